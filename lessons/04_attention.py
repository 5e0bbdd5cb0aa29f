# %% [markdown]
# # 04 · The essence of attention · 注意力机制的本质
#
# Attention (注意力机制) is a weighted sum whose weights are computed from the data. A
# query (查询) q scores every key (键) k_t, the scores become attention weights (注意力权重)
# a_t, and the output is the weighted sum of the values (值) v_t:
#
# $$s_t = \mathrm{score}(q, k_t), \qquad a = \mathrm{softmax}(s) \ \text{(or } a = s
#   \text{)}, \qquad o = \sum_t a_t v_t.$$
#
# In a recommender the query is the candidate item (候选物品), the keys and values are the
# user's past behaviours (用户行为序列). AFM (lesson 05) scores feature crosses instead of
# behaviours; DIN (lesson 06) scores behaviours with a small MLP, its activation unit
# (激活单元), and keeps the weights unnormalised.
#
# 注意力机制就是“由数据决定权重的加权求和”：查询 q 给每个键 k_t 打分，分数变成注意力权重
# a_t，输出是值 v_t 的加权和。推荐系统里查询是候选物品，键和值是用户的历史行为。

# %%
"""Lesson 04: attention as query, keys and values; softmax, masking and the softmax gradient."""

TITLE_EN = "The essence of attention: a query weighs keys, the output sums values"
TITLE_ZH = "注意力机制的本质：查询给键打分，输出是值的加权和"

import sys

import numpy as np

from minirec.lesson import Lesson, use_agg_backend

use_agg_backend()

import matplotlib.pyplot as plt  # noqa: E402

from minirec.gradcheck import check_gradients  # noqa: E402
from minirec.nn.afm_attention import AFMAttention  # noqa: E402
from minirec.nn.din_attention import DINAttention  # noqa: E402
from minirec.nn.embedding import Embedding, EmbeddingBag  # noqa: E402
from minirec.nn.functional import masked_softmax, softmax, softmax_backward  # noqa: E402

lesson = Lesson("04_attention", sys.argv[1:], description=(TITLE_EN, TITLE_ZH))
lesson.say(TITLE_EN, TITLE_ZH)
lesson.say(
    "Terms: attention (注意力机制), query (查询), key (键), value (值), attention weight "
    "(注意力权重), padding (填充), mask (掩码), sum pooling (求和池化), and DIN's activation unit "
    "(激活单元), the small MLP that scores each behaviour in lesson 06.",
    "术语：注意力机制（attention）、查询（query）、键（key）、值（value）、注意力权重"
    "（attention weight）、填充（padding）、掩码（mask）、求和池化（sum pooling），以及 DIN 的"
    "激活单元（activation unit）：第 06 课中给每个历史行为打分的小型 MLP。",
)
LN2 = np.log(2.0)


def dot_product_attention(embedding_dim, *, scale=1.0, normalize=True):
    """Return a DINAttention whose activation unit computes ``scale * <q, k>``, nothing else.

    DIN's unit is an MLP over ``[q, k, q - k, q * k]``. Its first layer here reads only the
    ``q * k`` block, with weight ``scale``, and its identity activation and output weight 1
    pass that sum on unchanged. The score is then the scaled dot product, so the layer
    computes dot-product attention with the keys as values.
    """
    K = embedding_dim
    layer = DINAttention(K, hidden=(1,), activation="identity", normalize=normalize,
                         random_state=0)
    first, last = layer.unit.layers[0], layer.unit.layers[-1]
    first.params["W"][...] = 0.0
    first.params["W"][3 * K:, 0] = scale                  # the q * k block
    first.params["b"][...] = 0.0
    last.params["W"][...] = 1.0
    last.params["b"][...] = 0.0
    return layer


# %% [markdown]
# ## 1. Query, keys, values by hand · 手算查询、键、值
#
# Dot-product scores $s_t = \langle q, k_t \rangle$ with
# $q = \ln 2\,(1, 1)$ and keys $(1, 1), (1, 0), (1, -1)$ give $s = \ln 2\,(2, 1, 0)$, so
# $e^{s} = (4, 2, 1)$ and the softmax weights are $(4, 2, 1)/7$. With values
# $(7, 0), (0, 7), (7, 7)$ the output is $(4, 0) + (0, 2) + (1, 1) = (5, 3)$.

# %%
lesson.section("1. Query, keys, values by hand",
               "1. 手算查询（query）、键（key）、值（value）")
q = LN2 * np.array([1.0, 1.0])
keys = np.array([[1.0, 1.0], [1.0, 0.0], [1.0, -1.0]])
values = np.array([[7.0, 0.0], [0.0, 7.0], [7.0, 7.0]])
lesson.show("q (K,)", q)
lesson.show("keys (T, K)", keys)
lesson.show("values (T, K)", values)

scores = lesson.show("scores s_t = <q, k_t> = ln2 * [2, 1, 0]", keys @ q)
exp_scores = lesson.show("exp(s) = [4, 2, 1]", np.exp(scores))
weights = lesson.show("attention weights a = exp(s) / 7", exp_scores / exp_scores.sum())
output = lesson.show("output o = sum_t a_t v_t", weights @ values)
lesson.claim(np.allclose(weights, [4 / 7, 2 / 7, 1 / 7]) and np.allclose(output, [5.0, 3.0]),
             "a = [4/7, 2/7, 1/7] and o = [5, 3], as on paper",
             "a = [4/7, 2/7, 1/7]，o = [5, 3]，与纸上计算一致")
lesson.agree("attention weights (minirec.nn.functional.softmax)", weights, softmax(scores))

lesson.say(
    "DIN's layer pools the keys themselves (values = keys). With its activation unit set "
    "to compute <q, k> and nothing else, DINAttention(normalize=True) is this dot-product "
    "attention: o = (4 [1, 1] + 2 [1, 0] + 1 [1, -1]) / 7 = [1, 3/7].",
    "DIN 的注意力层对键本身加权求和（值 = 键）。把它的激活单元设为只计算 <q, k>，"
    "DINAttention(normalize=True) 就是这里的点积注意力：o = (4 [1, 1] + 2 [1, 0] + "
    "1 [1, -1]) / 7 = [1, 3/7]。",
)
din_dot = dot_product_attention(2, normalize=True)
pooled = din_dot.forward(q[None, :], keys[None, :, :], np.array([3]))
lesson.agree("weights (DINAttention, normalize=True)", weights[None, :], din_dot.weights)
lesson.agree("o with values = keys (DINAttention)", (weights @ keys)[None, :], pooled)
lesson.claim(np.allclose(pooled, [[1.0, 3 / 7]]), "o = [1, 3/7], as on paper",
             "o = [1, 3/7]，与纸上计算一致")

# %% [markdown]
# ## 2. Softmax or not: DIN keeps the intensity of interest · 归一化与否：DIN 保留兴趣强度
#
# Softmax weights are positive and sum to 1 whatever the scores, and adding a constant to
# every score changes nothing: $\mathrm{softmax}(s + c) = \mathrm{softmax}(s)$. So the
# pooled vector is always a weighted *average* of the values. How much of the history is
# relevant, one behaviour or ten, is lost.
#
# DIN (Zhou et al., KDD 2018) drops the softmax on purpose and uses the activation unit's
# outputs as the weights, so that $\sum_t a_t$ keeps the intensity of the user's interest
# in the candidate. minirec offers both: `DINAttention(normalize=False)` (the paper) and
# `normalize=True` (a masked softmax, as in the authors' released code).

# %%
lesson.section("2. Softmax or not: DIN keeps the intensity of interest",
               "2. 归一化与否：DIN 保留兴趣强度")
lesson.agree("softmax(s + 10) = softmax(s)", softmax(scores), softmax(scores + 10.0))
lesson.say(
    "Candidate: a running shoe r = [1, 1]. User A clicked that shoe once; user B clicked it "
    "three times. Histories padded to T = 3: A = [r, pad, pad] (length 1), B = [r, r, r].",
    "候选物品：一双跑鞋 r = [1, 1]。用户 A 点击过这双鞋一次，用户 B 点击过三次。历史补齐到 "
    "T = 3：A = [r, 填充, 填充]（长度 1），B = [r, r, r]。",
)
r = np.array([1.0, 1.0])
histories = np.stack([np.stack([r, np.zeros(2), np.zeros(2)]), np.stack([r, r, r])])
lengths = np.array([1, 3])
candidate = np.stack([r, r])
normalised = dot_product_attention(2, normalize=True)
pooled_softmax = normalised.forward(candidate, histories, lengths)
unnormalised = dot_product_attention(2, normalize=False)
pooled_raw = unnormalised.forward(candidate, histories, lengths)
lesson.show("softmax weights (A; B)", normalised.weights)
lesson.show("pooled with softmax (A; B)", pooled_softmax)
lesson.show("unnormalised weights = <q, k_t> = 2 (A; B)", unnormalised.weights)
lesson.show("pooled without softmax (A; B)", pooled_raw)
lesson.claim(np.allclose(pooled_softmax[0], pooled_softmax[1]),
             "with softmax, A and B get the same user vector r: one click and three clicks "
             "look alike",
             "使用 softmax 时，A 和 B 得到相同的用户向量 r：点一次和点三次看起来一样")
lesson.claim(np.allclose(unnormalised.weights.sum(axis=1), [2.0, 6.0])
             and np.allclose(pooled_raw[1], 3 * pooled_raw[0]),
             "without softmax the weights sum to 2 for A and 6 for B, and B's vector is 3 times "
             "A's: the intensity of interest survives",
             "不做 softmax 时，A 的权重之和为 2，B 为 6，B 的用户向量是 A 的 3 倍：兴趣强度得以保留")

# %% [markdown]
# ## 3. Masked softmax for padding · 用掩码 softmax 处理填充
#
# Histories have different lengths, so a batch pads them to T positions. A padded position
# must get weight exactly 0, whatever score it has:
#
# $$a_t = \frac{m_t\, e^{s_t}}{\sum_u m_u\, e^{s_u}}, \qquad m_t = [t < \text{length}],$$
#
# and a history with no valid position (an empty list) must pool to zeros rather than
# 0/0 = NaN. Filling padded scores with a large negative number and taking a plain softmax
# (as the DIN authors' code does, with $-2^{32} + 1$) works for non-empty rows, but an empty
# row then spreads its weight evenly over the padding.

# %%
lesson.section("3. Masked softmax for padding", "3. 用掩码 softmax 处理填充（padding）")
padded_scores = np.array([[LN2 * 2, LN2, 50.0, np.nan],     # length 2, garbage at the padding
                          [3.0, -1.0, 0.5, 2.0],             # length 4
                          [7.0, 7.0, 7.0, 7.0]])             # length 0: an empty history
row_lengths = np.array([2, 4, 0])
mask = np.arange(4)[None, :] < row_lengths[:, None]
lesson.show("scores (B, T), garbage at padded positions", padded_scores)
lesson.show("mask (B, T)", mask)
masked = lesson.show("masked_softmax(scores, mask)", masked_softmax(padded_scores, mask))
lesson.claim(np.allclose(masked[0, :2], [2 / 3, 1 / 3]),
             "row 1: exp(s) = [4, 2] on the two valid positions, so the weights are [2/3, 1/3]",
             "第 1 行：两个有效位置上 exp(s) = [4, 2]，权重为 [2/3, 1/3]")
lesson.claim(np.all(masked[~mask] == 0.0), "every padded position has weight exactly 0, even "
             "where its score is 50 or NaN", "所有填充位置的权重严格为 0，即使其分数是 50 或 NaN")
lesson.claim(np.allclose(masked[:2].sum(axis=1), 1.0) and np.all(masked[2] == 0.0),
             "rows with a valid position sum to 1; the empty row is all zeros, not NaN",
             "有有效位置的行权重和为 1；空行全为 0，而不是 NaN")
filled = np.where(mask, padded_scores, -2.0 ** 32 + 1)
lesson.show("plain softmax after filling with -2^32 + 1", softmax(filled))
lesson.claim(np.allclose(softmax(filled)[2], 0.25),
             "the fill trick gives the empty row weight 1/4 on each padded position",
             "填充大负数的做法让空行在每个填充位置上都得到 1/4 的权重")

lesson.say(
    "DINAttention applies the same rule: padded keys get weight 0 and gradient exactly 0, "
    "and an empty history pools to zeros.",
    "DINAttention 遵循同样的规则：填充位置的键权重为 0、梯度严格为 0，空历史池化为零向量。",
)
pad_layer = dot_product_attention(2, normalize=True)
pad_keys = np.array([[[1.0, 1.0], [1.0, 0.0], [9.0, 9.0]],
                     [[5.0, 5.0], [5.0, 5.0], [5.0, 5.0]]])
pad_pooled = pad_layer.forward(np.array([[LN2, LN2], [1.0, 1.0]]), pad_keys, np.array([2, 0]))
d_query, d_keys = pad_layer.backward(np.ones((2, 2)))
lesson.agree("pooled (length 2: (4 [1, 1] + 2 [1, 0]) / 6 = [1, 2/3]; length 0: zeros)",
             np.array([[1.0, 2 / 3], [0.0, 0.0]]), pad_pooled)
lesson.claim(np.all(d_keys[0, 2] == 0.0) and np.all(d_keys[1] == 0.0)
             and np.all(d_query[1] == 0.0),
             "the padded keys and the empty row's query receive gradient exactly 0",
             "填充位置的键和空行的查询收到的梯度严格为 0")

# %% [markdown]
# ## 4. The gradient of softmax, by hand · 手推 softmax 的梯度
#
# With $s_i = e^{z_i} / \Sigma$, $\Sigma = \sum_j e^{z_j}$, the quotient rule gives
#
# $$\frac{\partial s_i}{\partial z_j}
#   = \frac{\delta_{ij} e^{z_i} \Sigma - e^{z_i} e^{z_j}}{\Sigma^2}
#   = s_i\,(\delta_{ij} - s_j), \qquad J = \mathrm{diag}(s) - s s^\top.$$
#
# Every column of J sums to 0 (the weights always sum to 1, so their total cannot move).
# Backward, with the upstream gradient $g = \partial L / \partial s$ and J symmetric:
#
# $$\frac{\partial L}{\partial z_j} = \sum_i g_i\, s_i (\delta_{ij} - s_j)
#   = s_j \Big(g_j - \sum_i s_i g_i\Big),$$
#
# which is `minirec.nn.functional.softmax_backward`. A masked position has $s_j = 0$ and so
# gets gradient 0.
#
# For $z = \ln 2\,(2, 1, 0)$, $s = (4, 2, 1)/7$ and
# $J = \frac{1}{49}\begin{pmatrix}12 & -8 & -4\\ -8 & 10 & -2\\ -4 & -2 & 6\end{pmatrix}$.

# %%
lesson.section("4. The gradient of softmax, by hand", "4. 手推 softmax 的梯度")
z = scores
s = softmax(z)
jacobian = lesson.show("J = diag(s) - s s^T, times 49", 49 * (np.diag(s) - np.outer(s, s)))
lesson.claim(np.allclose(jacobian, [[12, -8, -4], [-8, 10, -2], [-4, -2, 6]]),
             "49 J = [[12, -8, -4], [-8, 10, -2], [-4, -2, 6]], as on paper",
             "49 J = [[12, -8, -4], [-8, 10, -2], [-4, -2, 6]]，与纸上计算一致")
lesson.claim(np.allclose(jacobian.sum(axis=0), 0.0),
             "every column of J sums to 0", "J 的每一列之和为 0")

g_upstream = np.array([1.0, 2.0, 0.0])
lesson.say(
    "Upstream g = [1, 2, 0]: sum_i s_i g_i = 4/7 + 4/7 = 8/7, so dL/dz = s * (g - 8/7) "
    "= [4/7 * (-1/7), 2/7 * (6/7), 1/7 * (-8/7)] = [-4, 12, -8] / 49.",
    "上游梯度 g = [1, 2, 0]：sum_i s_i g_i = 4/7 + 4/7 = 8/7，所以 dL/dz = s * (g - 8/7) "
    "= [4/7 * (-1/7), 2/7 * (6/7), 1/7 * (-8/7)] = [-4, 12, -8] / 49。",
)
d_z_by_hand = lesson.show("dL/dz = J^T g", (np.diag(s) - np.outer(s, s)).T @ g_upstream)
lesson.claim(np.allclose(49 * d_z_by_hand, [-4, 12, -8]), "49 dL/dz = [-4, 12, -8], as on paper",
             "49 dL/dz = [-4, 12, -8]，与纸上计算一致")
lesson.agree("dL/dz (softmax_backward)", d_z_by_hand, softmax_backward(s, g_upstream))
masked_weights = masked_softmax(np.array([z[0], z[1], 50.0]), np.array([True, True, False]))
lesson.claim(softmax_backward(masked_weights, np.array([1.0, 2.0, 5.0]))[2] == 0.0,
             "softmax_backward gives a masked position gradient exactly 0",
             "softmax_backward 给被掩码位置的梯度严格为 0")

lesson.say(
    "Central differences on two layers whose backward runs through softmax_backward:",
    "在两个反向传播经过 softmax_backward 的组件上做中心差分检验：",
)
rng = np.random.default_rng(0)
B, P, T, K = (3, 3, 4, 3) if lesson.quick else (5, 6, 7, 4)
afm_attention = AFMAttention(K, 4, random_state=1)
afm_attention.params["b"][...] = rng.normal(0.0, 0.5, size=4)
lesson.gradcheck(check_gradients(afm_attention, [rng.normal(size=(B, P, K))],
                                 name=f"AFMAttention (B={B}, P={P}, K={K})"))
din_attention = DINAttention(K, hidden=(5,), activation="sigmoid", normalize=True,
                             random_state=2)
din_lengths = np.array([T, 0] + [int(v) for v in rng.integers(1, T, size=B - 2)])
lesson.gradcheck(check_gradients(din_attention, [rng.normal(size=(B, K)),
                                                 rng.normal(size=(B, T, K)), din_lengths],
                                 differentiable=[0, 1],
                                 name=f"DINAttention normalize=True (B={B}, T={T}, K={K}, "
                                      f"lengths {din_lengths.tolist()})"))

# %% [markdown]
# ## 5. What attention can express and sum pooling cannot · 注意力能表达而求和池化不能的东西
#
# A user clicked three shoes (vectors near (1, 0)) and three books (near (0, 1)). For a shoe
# candidate the relevant part of the history is the shoes, for a book candidate the books.
# Sum pooling (求和池化, `EmbeddingBag(mode="sum")`) gives one fixed user vector whatever the
# candidate, so it can at best sit between the two targets. Attention pooling is the same
# weighted sum with query-dependent weights, so each candidate gets its own user vector.
# This is the bottleneck DIN removes (lesson 06), where the score comes from a learned
# activation unit instead of a fixed dot product.

# %%
lesson.section("5. What attention can express and sum pooling cannot",
               "5. 注意力能表达而求和池化不能的东西")
behaviour_names = ["shoe 1", "shoe 2", "shoe 3", "book 1", "book 2", "book 3"]
behaviours = np.array([[1.0, 0.2], [1.0, -0.2], [1.0, 0.0],
                       [0.2, 1.0], [-0.2, 1.0], [0.0, 1.0]])
candidates = np.array([[1.0, 0.0], [0.0, 1.0]])            # a shoe, a book
targets = np.array([behaviours[:3].mean(axis=0), behaviours[3:].mean(axis=0)])
SCALE = 5.0

table = Embedding(8, 2, random_state=0)
table.params["weight"][2:] = behaviours                   # ids 2..7; 0 pads, 1 is unknown
history_ids = np.tile(np.arange(2, 8), (2, 1))             # the same history for both rows
sum_pooled = EmbeddingBag(table, mode="sum").forward(history_ids)
attention_layer = dot_product_attention(2, scale=SCALE, normalize=True)
attention_pooled = attention_layer.forward(candidates, np.stack([behaviours, behaviours]),
                                           np.array([6, 6]))
attention_weights = lesson.show(f"attention weights, score = {SCALE:g} <q, k> (shoe; book)",
                                attention_layer.weights)
lesson.agree("attention pooling = EmbeddingBag(sum) with the attention weights",
             EmbeddingBag(table, mode="sum").forward(history_ids, attention_weights),
             attention_pooled)
lesson.show("targets: mean of the candidate's category (shoe; book)", targets)
lesson.show("sum pooling, the same for both candidates", sum_pooled)
lesson.show("attention pooling (shoe; book)", attention_pooled)

best_fixed = targets.mean(axis=0)
error_fixed = float(np.mean(np.sum((targets - best_fixed) ** 2, axis=1)))
error_attention = float(np.mean(np.sum((targets - attention_pooled) ** 2, axis=1)))
lesson.claim(np.allclose(sum_pooled[0], sum_pooled[1]) and np.isclose(error_fixed, 0.5),
             "sum pooling gives both candidates one vector; the best any fixed vector can do is "
             "the midpoint of the targets, with mean squared error 0.5",
             "求和池化对两个候选物品给出同一个向量；任何固定向量最好也只能取两个目标的中点，"
             "均方误差为 0.5")
lesson.claim(attention_weights[0, :3].sum() > 0.99 and attention_weights[1, 3:].sum() > 0.99,
             "attention puts more than 99% of its weight on the candidate's own category",
             "注意力把超过 99% 的权重放在候选物品所属的类别上")
lesson.claim(error_attention < 0.01 * error_fixed,
             f"attention pooling's mean squared error is {error_attention:.1e}, below 1% of the "
             "best fixed vector's",
             f"注意力池化的均方误差为 {error_attention:.1e}，不到最佳固定向量的 1%")

figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8),
                                     gridspec_kw={"width_ratios": [1, 1.4]})
left.scatter(behaviours[:3, 0], behaviours[:3, 1], color="tab:blue", label="shoes clicked")
left.scatter(behaviours[3:, 0], behaviours[3:, 1], color="tab:green", label="books clicked")
left.scatter(candidates[:, 0], candidates[:, 1], marker="*", s=180, color="black",
             label="candidates")
left.scatter(attention_pooled[:, 0], attention_pooled[:, 1], marker="x", s=80,
             color="tab:red", label="attention pooling")
left.scatter([sum_pooled[0, 0] / 6], [sum_pooled[0, 1] / 6], marker="s", color="tab:orange",
             label="sum pooling / 6, one point for both")
left.set_xlim(-0.5, 1.5)
left.set_ylim(-0.5, 1.5)
left.set_aspect("equal")
left.legend(fontsize=7, loc="upper right")
left.set_title("user vector per candidate")
image = right.imshow(attention_weights, cmap="viridis", vmin=0.0, vmax=0.35, aspect="auto")
for (row, column), value in np.ndenumerate(attention_weights):
    right.text(column, row, f"{value:.3f}", ha="center", va="center", fontsize=8,
               color="white" if value < 0.2 else "black")
right.set_xticks(np.arange(6))
right.set_xticklabels(behaviour_names)
right.set_yticks([0, 1])
right.set_yticklabels(["shoe candidate", "book candidate"])
right.set_title("attention weights (sum pooling: 1 everywhere)")
figure.colorbar(image, ax=right, label="attention weight")
figure.tight_layout()
lesson.save_figure(figure, "attention_vs_sum_pooling.png")

lesson.done()
