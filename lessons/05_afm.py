# %% [markdown]
# # 05 · AFM: attention over the feature crosses · 注意力因子分解机
#
# An FM adds up every pairwise interaction with the same weight 1. AFM (Xiao et al.,
# "Attentional Factorization Machines: Learning the Weight of Feature Interactions via
# Attention Networks", IJCAI 2017) keeps the element-wise product of every field pair. A small
# attention network (注意力网络) then decides how much each cross feature (特征交叉) counts:
#
# $$\hat y = w_0 + \sum_i w_i x_i
#   + p^\top \sum_{i<j} a_{ij}\,(v_i \odot v_j)\,x_i x_j$$
#
# $$a'_{ij} = h^\top \mathrm{ReLU}\big(W (v_i \odot v_j) x_i x_j + b\big), \qquad
#   a_{ij} = \frac{\exp a'_{ij}}{\sum_{(k,l)} \exp a'_{kl}}$$
#
# For one-hot fields $x_i = 1$, so the sums run over the fields. With every $a_{ij} = 1$ and
# $p = (1, \dots, 1)$ the last term is $\sum_{i<j} \langle v_i, v_j \rangle$, the FM.
#
# FM 对所有二阶交叉一视同仁（权重都是 1）；AFM 保留每对特征域的元素积，再用一个注意力网络给每个
# 交叉特征打分，softmax 之后得到注意力权重 a_ij，加权求和后经向量 p 投影成一个数。

# %%
"""Lesson 05: AFM, an attention network that weighs every feature cross, by hand and trained."""

TITLE_EN = "AFM: an attention network gives every feature cross its own weight"
TITLE_ZH = "AFM：注意力网络为每个交叉特征分配权重"

import sys
import time

import numpy as np

from minirec.lesson import Lesson, use_agg_backend

use_agg_backend()

import matplotlib.pyplot as plt  # noqa: E402

from minirec.data.schema import Field, Schema  # noqa: E402
from minirec.data.synthetic import WORLDS  # noqa: E402
from minirec.gradcheck import check_gradients  # noqa: E402
from minirec.metrics import auc  # noqa: E402
from minirec.models.afm import AFM  # noqa: E402
from minirec.models.fm import FM  # noqa: E402
from minirec.nn.afm_attention import AFMAttention  # noqa: E402
from minirec.nn.fm import FMInteraction  # noqa: E402
from minirec.nn.pairwise import PairwiseProducts  # noqa: E402
from minirec.train import fit, predict_logits  # noqa: E402

lesson = Lesson("05_afm", sys.argv[1:], description=(TITLE_EN, TITLE_ZH))
started = time.perf_counter()
print(lesson.text(TITLE_EN, TITLE_ZH))

# %% [markdown]
# ## 1. The forward pass by hand · 手算前向传播
#
# Three fields with K = 2: e1 = (1, 0), e2 = (0, 1), e3 = (1, 1). The attention network has
# W = I, b = 0, h = (1, 2), and the projection is p = (1, 1). Worked on paper:
#
# - products: e1*e2 = (0, 0), e1*e3 = (1, 0), e2*e3 = (0, 1)
# - scores a' = h . ReLU(u) = 0, 1, 2
# - a = (1, e, e^2) / (1 + e + e^2) = (0.0900, 0.2447, 0.6652)
# - pooled = 0.2447 (1, 0) + 0.6652 (0, 1); output = p . pooled = 0.2447 + 0.6652 = 0.90997

# %%
lesson.section("1. The forward pass by hand", "1. 手算前向传播")
lesson.say(
    "Three one-hot fields (特征域), each reduced to its embedding v_i (K = 2). The pair-wise "
    "interaction layer keeps every element-wise product (元素积) v_i * v_j, i < j, one per "
    "feature cross (特征交叉). The attention network (注意力网络) scores each product, a "
    "softmax over the pairs turns the scores into attention weights (注意力权重), and p "
    "projects the weighted sum to one number.",
    "三个独热编码的特征域（field），各自只剩下嵌入向量 v_i（K = 2）。成对交互层为每个交叉特征保留"
    "元素积（哈达玛积）v_i * v_j（i < j）；注意力网络（attention network）给每个元素积打分，"
    "对所有特征对做 softmax 得到注意力权重，加权求和后由 p 投影成一个数。",
)

E = np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])                     # (B=1, F=3, K=2)
W = np.eye(2)                                                              # (K, A=2)
b = np.zeros(2)                                                            # (A,)
h = np.array([1.0, 2.0])                                                   # (A,)
p = np.array([1.0, 1.0])                                                   # (K,)
pairs = [(0, 1), (0, 2), (1, 2)]
lesson.show("E (fields e1, e2, e3)", E)
lesson.show("W", W)
lesson.show("b", b)
lesson.show("h", h)
lesson.show("p", p)

# step 1: element-wise products of the pairs (1,2), (1,3), (2,3)
products = np.stack([E[:, i, :] * E[:, j, :] for i, j in pairs], axis=1)  # (1, P=3, K)
lesson.show("u = v_i * v_j", products)

# step 2: the attention network, one hidden ReLU layer per pair
hidden_pre = products @ W + b                                              # (1, P, A)
hidden = np.maximum(hidden_pre, 0.0)                                       # (1, P, A)
lesson.show("hidden_pre = u W + b", hidden_pre)
lesson.show("hidden = ReLU(hidden_pre)", hidden)

# step 3: one score per pair, then a softmax over the pairs
scores = hidden @ h                                                        # (1, P)
exp_scores = np.exp(scores)                                                # (1, P)
weights = exp_scores / exp_scores.sum(axis=1, keepdims=True)               # (1, P)
lesson.show("scores a' = hidden . h", scores)
lesson.show("a = softmax(a')", weights)

# step 4: attention-weighted sum of the pair vectors and the projection p
pooled = (weights[:, :, None] * products).sum(axis=1)                      # (1, K)
out = pooled @ p                                                           # (1,)
lesson.show("pooled = sum a_ij u_ij", pooled)
lesson.show("out = p . pooled", out)

lesson.claim(np.allclose(weights[0], [0.0900, 0.2447, 0.6652], atol=5e-5),
             "the weights are (0.0900, 0.2447, 0.6652), as worked on paper",
             "权重为 (0.0900, 0.2447, 0.6652)，与纸上演算一致")
lesson.claim(abs(out[0] - 0.90997) < 5e-6,
             f"the interaction term is {out[0]:.5f} = 0.2447 + 0.6652",
             f"交叉项为 {out[0]:.5f} = 0.2447 + 0.6652")

pairwise = PairwiseProducts(num_fields=3)
attention = AFMAttention(embedding_dim=2, attention_dim=2)
for name, value in (("W", W), ("b", b), ("h", h), ("p", p)):
    attention.params[name][...] = value
products_library = pairwise.forward(E)
out_library = attention.forward(products_library)
lesson.claim(pairwise.pairs == pairs,
             f"PairwiseProducts orders the pairs {pairwise.pairs} (lexicographic, i < j)",
             f"PairwiseProducts 的特征对顺序为 {pairwise.pairs}（字典序，i < j）")
lesson.agree("u", products, products_library)
lesson.agree("a", weights, attention.weights)
lesson.agree("out", out, out_library)

# %% [markdown]
# The whole model adds the bias and the first-order weights. With w0 = -0.5 and
# w = (0.1, -0.2, 0.3): y = -0.5 + 0.2 + 0.90997 = 0.60997. And FM is the special case
# a_ij = 1, p = (1, 1): 0 + 1 + 1 = 2 = <e1, e2> + <e1, e3> + <e2, e3>.

# %%
lesson.say(
    "The AFM model adds the bias w0 and the first-order weights w_i. Below, the model's rows "
    "are set to the numbers above and its logit is compared with the formula.",
    "完整的 AFM 模型还要加上偏置 w0 和一阶项 w_i。下面把模型中的参数设成上面的数字，再把它的 logit "
    "与公式比较。",
)
schema = Schema([Field(f"field{f + 1}", "sparse", vocab_size=3) for f in range(3)])
model = AFM(schema, embedding_dim=2, attention_dim=2, random_state=0)
w0, w = -0.5, np.array([0.1, -0.2, 0.3])
model.params["bias"][...] = w0
for f, field in enumerate(schema.fields):
    table, offset = model.embedding.table_rows(field.name)
    table.params["weight"][offset + 2] = E[0, f]           # id 2 is the first known value
    table, offset = model.first_order.table_rows(field.name)
    table.params["weight"][offset + 2] = w[f]
for name, value in (("W", W), ("b", b), ("h", h), ("p", p)):
    model.attention.params[name][...] = value
row = {field.name: np.array([2]) for field in schema.fields}
logit = model.forward(row)
y_by_hand = w0 + w.sum() + out[0]
lesson.show("AFM logit", logit)
lesson.agree("y = w0 + sum w_i + p . sum a_ij u_ij", np.array([y_by_hand]), logit)
lesson.agree("AFM.attention_weights()", weights, model.attention_weights())

fm_term = FMInteraction().forward(E)                                       # (1,)
afm_with_unit_weights = (products.sum(axis=1) @ np.ones(2))                # (1,)
lesson.show("FM pairwise term sum <v_i, v_j>", fm_term)
lesson.agree("AFM with a_ij = 1 and p = 1 vs FM", afm_with_unit_weights, fm_term)
lesson.say(
    "So FM is the AFM whose attention weights are all 1 and whose projection is all ones; "
    "AFM learns both from the data.",
    "所以 FM 就是注意力权重全为 1、投影 p 全为 1 的 AFM；AFM 则从数据中学习这两者。",
)

# %% [markdown]
# ## 2. The backward pass by hand · 手推反向传播
#
# For one row with upstream gradient g = dL/dy, walk the forward steps in reverse:
#
# 5. projection $y = p^\top s$, $s = \sum a_{ij} u_{ij}$:
#    $\partial L/\partial p = g\,s$, $\partial L/\partial s = g\,p$.
# 4. weighted sum: $\partial L/\partial a_{ij} = (\partial L/\partial s)^\top u_{ij}$ and the
#    direct part $\partial L/\partial u_{ij} \mathrel{+}= a_{ij}\,\partial L/\partial s$.
# 3. softmax: $\partial L/\partial a'_{ij} = a_{ij}\big(\partial L/\partial a_{ij}
#    - \sum_{kl} a_{kl}\,\partial L/\partial a_{kl}\big)$.
# 2. score $a' = h^\top r$ with $r = \mathrm{ReLU}(z)$:
#    $\partial L/\partial h = \sum_{ij} (\partial L/\partial a'_{ij})\, r_{ij}$,
#    $\partial L/\partial r_{ij} = (\partial L/\partial a'_{ij})\, h$.
# 1. $z = W^\top u + b$ (code: `u @ W + b`): $\partial L/\partial z = \partial L/\partial r
#    \odot [z > 0]$; $\partial L/\partial W = \sum u_{ij} (\partial L/\partial z_{ij})^\top$,
#    $\partial L/\partial b = \sum \partial L/\partial z_{ij}$, and the second part
#    $\partial L/\partial u_{ij} \mathrel{+}= W\,\partial L/\partial z_{ij}$.
# 0. products $u_{ij} = v_i \odot v_j$: $\partial L/\partial v_i = \sum_{j \ne i}
#    \partial L/\partial u_{ij} \odot v_j$.
#
# 反向传播按前向的步骤倒着走：投影、加权求和、softmax、ReLU 注意力网络，最后是元素积。
# 注意 u 得到两份梯度：一份来自加权求和（直接路径），一份来自注意力网络（打分路径）。

# %%
lesson.section("2. The backward pass by hand", "2. 手推反向传播")
lesson.say(
    "Upstream gradient g = dL/dy = 1. Each gradient below follows one line of the derivation, "
    "in reverse order of the forward steps.",
    "上游梯度 g = dL/dy = 1。下面每个梯度对应推导中的一行，顺序与前向步骤相反。",
)
g = np.array([1.0])                                                        # (1,)

# 5. projection
d_p = pooled.T @ g                                                         # (K,)
d_pooled = g[:, None] * p                                                  # (1, K)
lesson.show("d_p = g * pooled", d_p)
lesson.show("d_pooled = g * p", d_pooled)

# 4. weighted sum over the pairs
d_weights = np.einsum("bk,bpk->bp", d_pooled, products)                    # (1, P)
d_products_direct = weights[:, :, None] * d_pooled[:, None, :]             # (1, P, K)
lesson.show("d_a = d_pooled . u", d_weights)

# 3. softmax
d_scores = weights * (d_weights - (weights * d_weights).sum(axis=1, keepdims=True))  # (1, P)
lesson.show("d_a' = a * (d_a - sum a d_a)", d_scores)

# 2. score = h . hidden
d_h = np.einsum("bpa,bp->a", hidden, d_scores)                             # (A,)
d_hidden = d_scores[:, :, None] * h                                        # (1, P, A)
lesson.show("d_h", d_h)

# 1. hidden = ReLU(u W + b)
d_hidden_pre = np.where(hidden_pre > 0, d_hidden, 0.0)                     # (1, P, A)
d_W = np.einsum("bpk,bpa->ka", products, d_hidden_pre)                     # (K, A)
d_b = d_hidden_pre.sum(axis=(0, 1))                                        # (A,)
d_products = d_products_direct + d_hidden_pre @ W.T                        # (1, P, K)
lesson.show("d_hidden_pre = d_hidden * [hidden_pre > 0]", d_hidden_pre)
lesson.show("d_W", d_W)
lesson.show("d_b", d_b)
lesson.show("d_u = a * d_pooled + d_hidden_pre W^T", d_products)

# 0. u_ij = v_i * v_j
d_E = np.zeros_like(E)                                                     # (1, F, K)
for pair_index, (i, j) in enumerate(pairs):
    d_E[:, i] += d_products[:, pair_index] * E[:, j]
    d_E[:, j] += d_products[:, pair_index] * E[:, i]
lesson.show("d_E", d_E)

attention.zero_grad()
attention.forward(products_library)
d_products_library = attention.backward(g)
d_E_library = pairwise.backward(d_products_library)
for name, by_hand in (("d_p", d_p), ("d_h", d_h), ("d_W", d_W), ("d_b", d_b)):
    lesson.agree(name, by_hand, attention.grads[name[2:]])
lesson.agree("d_u", d_products, d_products_library)
lesson.agree("d_E", d_E, d_E_library)

lesson.say(
    "The pair e1*e2 = (0, 0) sits exactly on the kink of the ReLU, where the gradient is taken "
    "as 0 by convention; a finite difference there would see half a slope. So the "
    "finite-difference checks below run on random numbers away from the kink, in float64.",
    "特征对 e1*e2 = (0, 0) 正好落在 ReLU 的拐点上，约定此处梯度取 0，而有限差分会看到一半的斜率。"
    "所以下面的梯度检验（float64 中心差分）用远离拐点的随机数。",
)
rng = np.random.default_rng(0)
check_attention = AFMAttention(embedding_dim=3, attention_dim=4, random_state=1)
check_attention.params["b"][...] = rng.normal(0.0, 0.5, size=4)
result = check_gradients(check_attention, [rng.normal(size=(4, 6, 3))], name="AFMAttention")
lesson.gradcheck(result)

check_schema = Schema([Field(f"f{f}", "sparse", vocab_size=5) for f in range(4)])
check_model = AFM(check_schema, embedding_dim=3, attention_dim=4, init_std=0.5,
                  random_state=2)
check_model.attention.params["b"][...] = rng.normal(0.0, 0.5, size=4)
check_batch = {f"f{f}": rng.integers(2, 5, size=6) for f in range(4)}
check_batch["f0"][:2] = 3                                   # a repeated id in one batch
result = check_gradients(check_model, [check_batch], differentiable=[], name="AFM model")
lesson.gradcheck(result)

# %% [markdown]
# ## 3. Training on a world with planted pairs · 在植入交叉的合成数据上训练
#
# The field world has 10 sparse fields, so 45 field pairs, and only f0 x f1 and f2 x f3 enter
# the click logit. FM gives each of the 45 pairs the weight 1, so whatever it fits on the 43
# empty pairs from a few thousand rows is noise on the test split. AFM can learn to give the
# empty pairs little attention.
#
# 合成数据有 10 个特征域、45 个特征对，只有 f0 x f1 和 f2 x f3 影响点击。FM 对 45 个特征对一视同仁，
# 在另外 43 个无用的特征对上拟合到的只是噪声；AFM 可以学会给它们很小的注意力权重。

# %%
lesson.section("3. Training on a world with planted pairs", "3. 在植入交叉的合成数据上训练")
# With these settings every claim held for random_state 0 to 13 in quick mode (AFM ahead by
# 0.030 test AUC or more) and 0 to 3 in full mode (ahead by 0.009 or more). The gap shrinks as
# the training split grows.
N_SAMPLES = 5000 if lesson.quick else 10000
EPOCHS = 10 if lesson.quick else 15
SEED = 0
splits = WORLDS["fields"](N_SAMPLES, pair_strength=3.0, random_state=SEED)
planted_names = list(splits.truth["planted_pair_names"])
lesson.say(
    f"{len(splits.train)} training rows, {len(splits.test)} test rows; planted pairs: "
    f"{', '.join(planted_names)}.",
    f"训练集 {len(splits.train)} 行，测试集 {len(splits.test)} 行；植入的交叉：{'、'.join(planted_names)}。",
)

training = dict(lr=0.03, epochs=EPOCHS, batch_size=256, patience=2, random_state=SEED,
                verbose=False)
afm = AFM(splits.schema, embedding_dim=8, attention_dim=8, random_state=SEED)
afm_result = fit(afm, splits, **training)
fm = FM(splits.schema, embedding_dim=8, random_state=SEED)
fm_result = fit(fm, splits, **training)
best_auc = auc(splits.test.labels, splits.truth["logits"]["test"])

# Mean attention weight of every pair over the test split, one evaluation pass.
predict_logits(afm, splits.test, batch_size=len(splits.test))
mean_attention = afm.attention_weights().mean(axis=0)                      # (P,)
pair_names = afm.pair_names
planted = [pair_names.index(name) for name in planted_names]
others = np.delete(mean_attention, planted)
uniform = 1.0 / len(pair_names)
order = np.argsort(-mean_attention)
lesson.say("Mean attention weight per pair on the test split (top 5):",
           "测试集上每个特征对的平均注意力权重（前 5 名）：")
for index in order[:5]:
    mark = lesson.text("  <- planted", "  <- 植入") if index in planted else ""
    print(f"    {pair_names[index]:>8}  {mean_attention[index]:.4f}{mark}")
lesson.claim(set(order[:len(planted)]) == set(planted),
             f"the {len(planted)} planted pairs get the highest mean attention "
             f"({mean_attention[planted].min():.3f} or more; no other pair above "
             f"{others.max():.3f}; uniform would be 1/{len(pair_names)} = {uniform:.3f})",
             f"{len(planted)} 个植入的交叉平均注意力最高（不低于 {mean_attention[planted].min():.3f}；"
             f"其他特征对都不超过 {others.max():.3f}；均匀分配为 1/{len(pair_names)} = {uniform:.3f}）")

afm_auc, fm_auc = afm_result.test["auc"], fm_result.test["auc"]
lesson.say(
    f"test AUC: AFM {afm_auc:.4f}, FM {fm_auc:.4f}; the true logits reach {best_auc:.4f}.",
    f"测试集 AUC：AFM {afm_auc:.4f}，FM {fm_auc:.4f}；真实 logit 可达 {best_auc:.4f}。",
)
lesson.claim(afm_auc > fm_auc,
             f"AFM's test AUC beats FM's by {afm_auc - fm_auc:.4f}",
             f"AFM 的测试集 AUC 比 FM 高 {afm_auc - fm_auc:.4f}")

# Labels inside the figure stay English: Matplotlib's bundled fonts have no CJK glyphs.
figure, axes = plt.subplots(figsize=(11, 3.6))
colors = ["tab:red" if p in planted else "tab:gray" for p in range(len(pair_names))]
axes.bar(np.arange(len(pair_names)), mean_attention, color=colors)
axes.axhline(uniform, color="black", linestyle="--", linewidth=1,
             label=f"uniform 1/{len(pair_names)}")
axes.set_xticks(np.arange(len(pair_names)))
axes.set_xticklabels(pair_names, rotation=90, fontsize=7)
axes.set_ylabel("mean attention weight a_ij")
axes.set_title(f"AFM's attention per field pair on the test split (red: planted pairs); "
               f"test AUC AFM {afm_auc:.3f} vs FM {fm_auc:.3f}")
axes.legend()
lesson.save_figure(figure, "afm_attention_per_pair.png")

lesson.say(f"run time {time.perf_counter() - started:.1f} s",
           f"运行时间 {time.perf_counter() - started:.1f} 秒")
lesson.done()
