# %% [markdown]
# # 03 · Feature crossing: NFM, Wide&Deep, Deep Crossing, and where the gains run out
# # 03 · 特征交叉：NFM、Wide&Deep、Deep Crossing，以及收益为何越来越小
#
# Three more ways to cross features (特征交叉), each computed by hand and checked against
# minirec:
#
# 1. NFM's bi-interaction pooling (双向交互池化): the sum of all pairwise element-wise
#    products, computed in O(F K) by the FM identity;
# 2. Wide&Deep's cross-product features: one id, and one weight, per pair of ids;
# 3. Deep Crossing's residual unit (残差单元).
#
# Then FM, FNN, Wide&Deep, Deep Crossing, NFM and DeepFM are trained on one synthetic click
# world and compared with a first-order model: the first step (crossing at all) gains far
# more than every later refinement of how to cross.
#
# 依次手算 NFM 的双向交互池化、Wide&Deep 的交叉积特征和 Deep Crossing 的残差单元，并与
# minirec 对照；最后在同一个合成点击数据上比较六个模型与一阶模型：第一步（开始做特征交叉）
# 的收益远大于之后各种交叉方式的改进。

# %%
"""Lesson 03: NFM's bi-interaction, Wide&Deep's cross features, Deep Crossing's residual unit."""

TITLE_EN = "Feature crossing: NFM, Wide&Deep, Deep Crossing, and where the gains run out"
TITLE_ZH = "特征交叉：NFM、Wide&Deep、Deep Crossing，以及收益为何越来越小"

import sys
import unicodedata

import numpy as np

from minirec.lesson import Lesson, use_agg_backend

use_agg_backend()

import matplotlib.pyplot as plt  # noqa: E402

from minirec.data.schema import Field, Schema  # noqa: E402
from minirec.data.synthetic import make_click_world  # noqa: E402
from minirec.gradcheck import check_gradients  # noqa: E402
from minirec.metrics import auc  # noqa: E402
from minirec.models.deep_crossing import DeepCrossing  # noqa: E402
from minirec.models.deepfm import DeepFM  # noqa: E402
from minirec.models.fm import FM  # noqa: E402
from minirec.models.fnn import FNN  # noqa: E402
from minirec.models.nfm import NFM  # noqa: E402
from minirec.models.wide_deep import WideDeep, cross_ids  # noqa: E402
from minirec.nn.fm import FMInteraction  # noqa: E402
from minirec.nn.pairwise import BiInteraction, PairwiseProducts  # noqa: E402
from minirec.nn.residual import ResidualUnit  # noqa: E402
from minirec.train import fit  # noqa: E402

lesson = Lesson("03_feature_crossing", sys.argv[1:], description=(TITLE_EN, TITLE_ZH))
lesson.say(TITLE_EN, TITLE_ZH)
lesson.say(
    "Terms: feature crossing (特征交叉), field (特征域), element-wise (Hadamard) product "
    "(元素积), bi-interaction pooling (双向交互池化), wide part / deep part (宽度部分 / 深度部分), "
    "residual unit (残差单元), serial / parallel combination (串行结构 / 并行结构).",
    "术语：特征交叉（feature crossing）、特征域（field）、元素积（element-wise / Hadamard "
    "product）、双向交互池化（bi-interaction pooling）、宽度部分 / 深度部分（wide / deep "
    "part）、残差单元（residual unit）、串行结构 / 并行结构（serial / parallel combination）。",
)

# %% [markdown]
# ## 1. NFM: bi-interaction pooling · NFM 的双向交互池化
#
# With field embeddings $e_1, \dots, e_F \in \mathbb{R}^K$ (for a one-hot field $e_f = x_f v_f$
# is the row of the table its id selects), NFM pools all pairwise element-wise (Hadamard)
# products into one K-vector:
#
# $$f_{BI} = \sum_{i<j} e_i \odot e_j
#          = \tfrac12\Big[\big(\textstyle\sum_i e_i\big)^2 - \textstyle\sum_i e_i^2\Big]$$
#
# with element-wise squares. The square of a sum contains every product $e_{ik} e_{jk}$ twice
# plus the squares, so the right side costs O(F K) instead of O(F^2 K). Summing $f_{BI}$ over
# k gives FM's pairwise term $\sum_{i<j}\langle e_i, e_j\rangle$; NFM instead feeds the whole
# vector to an MLP (NFM with no hidden layer and all-one output weights is FM).

# %%
lesson.section("1. NFM: bi-interaction pooling (双向交互池化)",
               "1. NFM：双向交互池化（bi-interaction pooling）")
lesson.say(
    "Three fields (F = 3), embeddings of size K = 2, one example (B = 1):",
    "三个特征域（field，F = 3），嵌入维度 K = 2，一个样本（B = 1）：",
)
E = np.array([[[1.0, 2.0],      # e_1
               [3.0, -1.0],     # e_2
               [0.5, 4.0]]])    # e_3
lesson.show("E", E)

lesson.say(
    "Route 1, every pair: e_1*e_2 = [3, -2], e_1*e_3 = [0.5, 8], e_2*e_3 = [1.5, -4].",
    "做法一，逐对相乘：e_1*e_2 = [3, -2]，e_1*e_3 = [0.5, 8]，e_2*e_3 = [1.5, -4]。",
)
pair_products = np.stack([E[:, 0] * E[:, 1], E[:, 0] * E[:, 2], E[:, 1] * E[:, 2]], axis=1)
lesson.show("pair_products (B, P, K)", pair_products)
f_bi_pairs = pair_products.sum(axis=1)                     # [5, 2]
lesson.show("f_BI by pairs = sum over p", f_bi_pairs)

lesson.say(
    "Route 2, the identity: sum = [4.5, 5], square_of_sum = [20.25, 25], "
    "sum_of_square = [1 + 9 + 0.25, 4 + 1 + 16] = [10.25, 21], half the difference = [5, 2].",
    "做法二，恒等式：和 = [4.5, 5]，square_of_sum = [20.25, 25]，"
    "sum_of_square = [1 + 9 + 0.25, 4 + 1 + 16] = [10.25, 21]，差的一半 = [5, 2]。",
)
sum_of_embeddings = E.sum(axis=1)
square_of_sum = lesson.show("square_of_sum", sum_of_embeddings ** 2)
sum_of_square = lesson.show("sum_of_square", (E ** 2).sum(axis=1))
f_bi_identity = lesson.show("f_BI by identity", 0.5 * (square_of_sum - sum_of_square))

lesson.claim(np.array_equal(f_bi_pairs, np.array([[5.0, 2.0]])),
             "the pairs sum to [5, 2], as computed on paper",
             "逐对求和得 [5, 2]，与纸上计算一致")
lesson.claim(np.allclose(f_bi_pairs, f_bi_identity),
             "route 1 (every pair) and route 2 (the identity) give the same f_BI",
             "做法一（逐对）与做法二（恒等式）得到相同的 f_BI")
lesson.agree("f_BI (BiInteraction)", f_bi_identity, BiInteraction().forward(E))
lesson.agree("pair products (PairwiseProducts)", pair_products, PairwiseProducts().forward(E))
lesson.agree("FM pairwise term = sum_k f_BI = 5 + 2 = 7", f_bi_identity.sum(axis=1),
             FMInteraction().forward(E))

# The operation counts behind O(F^2 K) versus O(F K), for the 39 feature columns of Criteo.
F_big, K_big = 39, 10
pair_multiplications = F_big * (F_big - 1) // 2 * K_big          # 741 pairs * 10
identity_multiplications = (F_big + 1) * K_big                    # F squares and 1 square per k
lesson.claim(pair_multiplications == 7410 and identity_multiplications == 400,
             f"with F = {F_big} fields and K = {K_big}, the pairs take {pair_multiplications} "
             f"multiplications, the identity {identity_multiplications}",
             f"F = {F_big} 个特征域、K = {K_big} 时，逐对相乘要 {pair_multiplications} 次乘法，"
             f"恒等式只要 {identity_multiplications} 次")

# %% [markdown]
# ### NFM with no hidden layer is FM · 没有隐藏层的 NFM 就是 FM
#
# $\hat y_{NFM} = w_0 + \sum_f w_f + h^\top \mathrm{MLP}(f_{BI})$. Without hidden layers and
# with $h = \mathbf 1$, $h^\top f_{BI} = \sum_k f_{BI,k} = \sum_{i<j}\langle e_i, e_j\rangle$.

# %%
tiny_schema = Schema([Field("user", "sparse", vocab_size=4),
                      Field("item", "sparse", vocab_size=5),
                      Field("city", "sparse", vocab_size=4)])
tiny_batch = {"user": np.array([2, 3, 2]), "item": np.array([3, 4, 4]),
              "city": np.array([2, 2, 3])}
fm_model = FM(tiny_schema, embedding_dim=2, init_std=0.5, random_state=1)
for _, value, _ in fm_model.first_order.parameters():
    value[...] = np.random.default_rng(2).normal(0.0, 0.5, size=value.shape)
fm_model.params["w0"][...] = 0.3
nfm_zero = NFM(tiny_schema, embedding_dim=2, hidden=(), random_state=3)
state = {name: value for name, value, _ in fm_model.parameters()}
state["prediction.W"] = np.ones((2, 1))
nfm_zero.load_state_dict(state)
lesson.agree("logits of NFM(hidden=(), h = 1) and FM", nfm_zero.forward(tiny_batch),
             fm_model.forward(tiny_batch))

# %% [markdown]
# ### Backward of bi-interaction · 双向交互池化的反向传播
#
# Write $s = \sum_i e_i$. Coordinate k of the output depends only on coordinate k of the
# inputs:
#
# $$\frac{\partial f_{BI,k}}{\partial e_{f,k}}
#   = \tfrac12\big[2 s_k - 2 e_{f,k}\big] = s_k - e_{f,k} = \sum_{j \ne f} e_{j,k},
#   \qquad \frac{\partial f_{BI,k}}{\partial e_{f,k'}} = 0 \ (k' \ne k).$$
#
# So with the upstream gradient $g = \partial L / \partial f_{BI}$:
# $\partial L / \partial e_f = g \odot (s - e_f)$. Field f receives the sum of the *other*
# fields' embeddings, exactly what the pair view gives (e_f meets every other field once).

# %%
lesson.say(
    "Upstream gradient g = dL/df_BI = [1, -0.5]; s = [4.5, 5], so dE_f = g * (s - e_f):",
    "上游梯度 g = dL/df_BI = [1, -0.5]；s = [4.5, 5]，于是 dE_f = g * (s - e_f)：",
)
g = np.array([[1.0, -0.5]])
d_E_by_hand = g[:, None, :] * (sum_of_embeddings[:, None, :] - E)
lesson.show("dE by hand", d_E_by_hand)
lesson.claim(np.array_equal(d_E_by_hand[0], [[3.5, -1.5], [1.5, -3.0], [4.0, -0.5]]),
             "dE = [[3.5, -1.5], [1.5, -3], [4, -0.5]], as on paper",
             "dE = [[3.5, -1.5], [1.5, -3], [4, -0.5]]，与纸上计算一致")
bi = BiInteraction()
bi.forward(E)
lesson.agree("dE (BiInteraction.backward)", d_E_by_hand, bi.backward(g))

rng = np.random.default_rng(0)
lesson.gradcheck(check_gradients(BiInteraction(), [rng.normal(size=(3, 4, 3))],
                                 name="BiInteraction (B=3, F=4, K=3)"))

# %% [markdown]
# ## 2. Wide&Deep: cross-product features · Wide&Deep 的交叉积特征
#
# The wide part is a linear model over binary features and their cross products
# $\phi_k(x) = \prod_i x_i^{c_{ki}}$: a cross is 1 only when all of its features are 1
# (an AND). For two one-hot fields a (V_a ids) and b (V_b ids) the cross of the pair
# (a, b) is the single entry of the outer product of the two one-hot vectors, at the
# row-major position
#
# $$\text{cross id} = a \cdot V_b + b,$$
#
# so every pair of ids gets its own weight, and the wide part *memorises* that pair.

# %%
lesson.section("2. Wide&Deep: cross-product features (交叉积特征)",
               "2. Wide&Deep：交叉积特征（cross-product feature）")
V_a, V_b = 4, 5
lesson.say(
    f"Field a = installed app ({V_a} ids: 0 padding, 1 unknown, 2 netflix, 3 pandora), "
    f"field b = shown app ({V_b} ids: 2, 3, 4 known). Row (a = 2, b = 3):",
    f"特征域 a = 已安装应用（{V_a} 个 id：0 填充，1 未知，2 netflix，3 pandora），"
    f"特征域 b = 曝光应用（{V_b} 个 id：2、3、4 为已知值）。样本 (a = 2, b = 3)：",
)
one_hot_a = np.eye(V_a)[2]
one_hot_b = np.eye(V_b)[3]
conjunctions = lesson.show("outer(one_hot_a, one_hot_b): AND of every pair",
                           np.outer(one_hot_a, one_hot_b))
lesson.claim(conjunctions.sum() == 1 and int(np.argmax(conjunctions.ravel())) == 2 * V_b + 3,
             f"exactly one cross feature is 1, at position a * V_b + b = 2 * {V_b} + 3 = 13",
             f"恰好一个交叉特征为 1，位置是 a * V_b + b = 2 * {V_b} + 3 = 13")

ids_a = np.array([2, 2, 3, 3])
ids_b = np.array([3, 4, 3, 4])
cross_by_hand = ids_a * V_b + ids_b                               # [13, 14, 18, 19]
lesson.show("cross ids by hand", cross_by_hand)
lesson.agree("cross ids (minirec.models.wide_deep.cross_ids)", cross_by_hand,
             cross_ids(ids_a, ids_b, V_b))

lesson.say(
    "Why a weight per pair: true logits +2 for (netflix, 3) and (pandora, 4), -2 for the "
    "other two pairs (an XOR pattern). No sum w_a + w_b fits it; one cross weight per pair "
    "fits it exactly.",
    "为什么要每对一个权重：设真实 logit 在 (netflix, 3) 和 (pandora, 4) 为 +2，另外两对为 "
    "-2（异或模式）。w_a + w_b 这种加法形式拟合不了；每对一个交叉权重则能精确拟合。",
)
target = np.array([2.0, -2.0, -2.0, 2.0])                         # rows of (ids_a, ids_b)
additive_design = np.stack([ids_a == 2, ids_a == 3, ids_b == 3, ids_b == 4], axis=1) * 1.0
additive_fit, *_ = np.linalg.lstsq(additive_design, target, rcond=None)
additive_prediction = additive_design @ additive_fit + 0.0      # + 0.0 turns -0.0 into 0.0
lesson.show("best additive fit w_a + w_b", additive_prediction)
lesson.claim(np.allclose(additive_prediction, 0.0),
             "the best least-squares w_a + w_b predicts 0 for every pair: it explains nothing",
             "最小二乘下最好的 w_a + w_b 对每一对都预测 0：什么也解释不了")

schema_ab = Schema([Field("a", "sparse", vocab_size=V_a), Field("b", "sparse", vocab_size=V_b)])
wide_deep = WideDeep(schema_ab, embedding_dim=2, hidden=(3,), cross_features=[("a", "b")],
                     random_state=0)
wide_deep.cross_tables[0].params["weight"][cross_by_hand, 0] = target
wide_deep.deep.layers[-1].params["W"][...] = 0.0                 # silence the deep part
lesson.agree("WideDeep logits with the cross weights set to the table", target,
             wide_deep.forward({"a": ids_a, "b": ids_b}))
lesson.say(
    f"The price: the cross table has V_a * V_b = {V_a * V_b} rows here, and two id fields of "
    "10^5 and 10^3 values would need 10^8; cross_buckets hashes the pairs into fewer rows, "
    "and pairs that share a bucket share a weight. Without hashing, a pair never seen in "
    "training keeps its initial weight 0: crosses memorise, they do not generalise.",
    f"代价：交叉表这里有 V_a * V_b = {V_a * V_b} 行，而取值数为 10^5 和 10^3 的两个 id 特征域"
    "需要 10^8 行；cross_buckets 把组合哈希到更少的行，同一桶中的组合共享权重。不做哈希时，训练中"
    "没见过的组合保持初始权重 0：交叉特征擅长记忆，不会泛化。",
)
all_a, all_b = np.meshgrid(np.arange(V_a), np.arange(V_b), indexing="ij")
hashed = cross_ids(all_a.ravel(), all_b.ravel(), V_b, buckets=7)
lesson.claim(hashed.min() >= 0 and hashed.max() < 7 and np.unique(hashed).size <= 7,
             f"with cross_buckets = 7 the {V_a * V_b} pairs land in "
             f"{np.unique(hashed).size} buckets, so some pairs share a weight",
             f"cross_buckets = 7 时，{V_a * V_b} 个组合落入 {np.unique(hashed).size} 个桶，"
             "因此有组合共享权重")

# %% [markdown]
# ## 3. Deep Crossing: the residual unit · Deep Crossing 的残差单元
#
# $$h = \mathrm{ReLU}(x W_0 + b_0), \quad r = h W_1 + b_1, \quad
#   \text{out} = \mathrm{ReLU}(x + r).$$
#
# The two layers learn the residual $r$, the correction to the input, and the skip
# connection gives $x$ a direct path to the output. Backward, with
# $d_{sum} = d_{out} \odot [x + r > 0]$:
#
# $$d_{h} = d_{sum} W_1^\top, \quad d_{pre} = d_h \odot [x W_0 + b_0 > 0], \quad
#   d_x = d_{pre} W_0^\top + d_{sum}.$$
#
# The last term, $+ d_{sum}$, is the skip path: the gradient reaches $x$ even when the
# inner layers pass nothing back.

# %%
lesson.section("3. Deep Crossing: the residual unit (残差单元)",
               "3. Deep Crossing：残差单元（residual unit）")
x = np.array([[1.0, -2.0]])
W0 = np.array([[1.0, 0.0], [1.0, 1.0]])
b0 = np.array([0.5, 3.0])
W1 = np.array([[2.0, -1.0], [1.0, 3.0]])
b1 = np.array([-4.0, -0.5])
lesson.say(
    "x = [1, -2]; x W0 + b0 = [1 - 2 + 0.5, -2 + 3] = [-0.5, 1]; h = ReLU = [0, 1]; "
    "r = h W1 + b1 = [1 - 4, 3 - 0.5] = [-3, 2.5]; out = ReLU(x + r) = ReLU([-2, 0.5]) = [0, 0.5].",
    "x = [1, -2]；x W0 + b0 = [1 - 2 + 0.5, -2 + 3] = [-0.5, 1]；h = ReLU = [0, 1]；"
    "r = h W1 + b1 = [1 - 4, 3 - 0.5] = [-3, 2.5]；out = ReLU(x + r) = ReLU([-2, 0.5]) = [0, 0.5]。",
)
pre = lesson.show("x W0 + b0", x @ W0 + b0)
h = lesson.show("h", np.maximum(pre, 0))
r = lesson.show("r", h @ W1 + b1)
out_by_hand = lesson.show("out", np.maximum(x + r, 0))
lesson.claim(np.array_equal(out_by_hand, [[0.0, 0.5]]), "out = [0, 0.5], as on paper",
             "out = [0, 0.5]，与纸上计算一致")

unit = ResidualUnit(2, 2, random_state=0)
unit.inner.params["W"][...] = W0
unit.inner.params["b"][...] = b0
unit.outer.params["W"][...] = W1
unit.outer.params["b"][...] = b1
lesson.agree("out (ResidualUnit)", out_by_hand, unit.forward(x))

lesson.say(
    "Backward with d_out = [1, 2]: d_sum = [0, 2]; d_h = d_sum W1^T = [-2, 6]; "
    "d_pre = [0, 6]; d_x = d_pre W0^T + d_sum = [0, 6] + [0, 2] = [0, 8].",
    "反向，d_out = [1, 2]：d_sum = [0, 2]；d_h = d_sum W1^T = [-2, 6]；"
    "d_pre = [0, 6]；d_x = d_pre W0^T + d_sum = [0, 6] + [0, 2] = [0, 8]。",
)
d_out = np.array([[1.0, 2.0]])
d_sum = d_out * (x + r > 0)
d_pre = (d_sum @ W1.T) * (pre > 0)
d_x_by_hand = lesson.show("d_x by hand", d_pre @ W0.T + d_sum)
lesson.claim(np.array_equal(d_x_by_hand, [[0.0, 8.0]]), "d_x = [0, 8], as on paper",
             "d_x = [0, 8]，与纸上计算一致")
lesson.agree("d_x (ResidualUnit.backward)", d_x_by_hand, unit.backward(d_out))
lesson.agree("dW0 = x^T d_pre", x.T @ d_pre, unit.inner.grads["W"])
lesson.agree("dW1 = h^T d_sum", h.T @ d_sum, unit.outer.grads["W"])
lesson.gradcheck(check_gradients(ResidualUnit(4, 3, random_state=1),
                                 [rng.normal(size=(5, 4))], name="ResidualUnit (B=5, D=4, H=3)"))

# %% [markdown]
# ## 4. Feature crossing is close to exhausted · 特征交叉已接近穷尽
#
# One click world whose true logit is known (`make_click_world`): first-order effects of
# six fields, three planted field pairs $\langle u_i, u_j\rangle$, and a product of three
# fields that only hidden layers can express. Seven models, each with embeddings of size
# K = 8 and trained by `minirec.train.fit` with Adam:
#
# | model | how it crosses features |
# |---|---|
# | LR (first order) | not at all: an FM whose latent vectors stay 0 |
# | FM | inner products of latent vectors, every pair |
# | FNN | an MLP over the FM's trained [w_i, v_i] (serial) |
# | Wide&Deep | one hand-made cross f0 x f1 (wide) beside an MLP (deep) |
# | Deep Crossing | stacked embeddings through a residual unit |
# | NFM | an MLP over the bi-interaction vector f_BI (serial) |
# | DeepFM | FM and MLP in parallel on one shared embedding |
#
# The AUC of the true logits on the test split is the ceiling no model can beat except by
# chance. The claims below held when this section ran with world seeds 0 to 15 in quick mode
# and 0 to 5 in full mode. Which deep model comes first changed from seed to seed, so no
# ranking is claimed.

# %%
lesson.section("4. Where the gains run out: seven models on one click world",
               "4. 收益在哪里耗尽：同一点击数据上的七个模型")
if lesson.quick:
    n_samples, epochs = 6000, 6
else:
    n_samples, epochs = 20000, 10
LEARNING_RATE = 0.03
EMBEDDING_DIM = 8
INIT_STD = 0.3
HIDDEN = (32, 16)
SEED = 0

world = make_click_world(n_samples, vocab_size=[10, 10, 10, 6, 6, 6], random_state=SEED)
lesson.say(
    f"click world: {len(world.train)} training, {len(world.valid)} validation and "
    f"{len(world.test)} test rows; fields {[f.name for f in world.schema]}, planted pairs "
    f"{world.truth['planted_pairs']}, three-way product of "
    f"{list(world.truth['nonlinear_fields'])}; "
    f"{epochs} epochs, Adam with lr {LEARNING_RATE}.",
    f"点击数据：训练 {len(world.train)} 行、验证 {len(world.valid)} 行、测试 {len(world.test)} 行；"
    f"特征域 {[f.name for f in world.schema]}，预置的交叉对 {world.truth['planted_pairs']}，"
    f"三阶乘积项来自 {list(world.truth['nonlinear_fields'])}；训练 {epochs} 轮，Adam，学习率 "
    f"{LEARNING_RATE}。",
)


def train(model):
    """Train ``model`` on the world and return its test AUC."""
    result = fit(model, world, lr=LEARNING_RATE, epochs=epochs, patience=None,
                 random_state=SEED, verbose=False)
    return result.test["auc"]


test_auc = {}
first_order = FM(world.schema, embedding_dim=1, init_std=0.0, random_state=SEED)
test_auc["LR (first order)"] = train(first_order)
latent_after = first_order.embedding.table.params["weight"]
lesson.claim(np.all(latent_after == 0.0),
             "the first-order model's latent vectors are still exactly 0 after training "
             "(the gradient of v_f is the sum of the other fields' vectors, all 0), so it is "
             "logistic regression",
             "一阶模型的隐向量训练后仍严格为 0（v_f 的梯度是其他特征域隐向量之和，全为 0），"
             "所以它就是逻辑回归")

fm = FM(world.schema, embedding_dim=EMBEDDING_DIM, init_std=INIT_STD, random_state=SEED)
test_auc["FM"] = train(fm)
test_auc["FNN"] = train(FNN.from_fm(fm, hidden=HIDDEN, random_state=SEED))
test_auc["Wide&Deep"] = train(WideDeep(world.schema, embedding_dim=EMBEDDING_DIM,
                                       hidden=HIDDEN, cross_features=[("f0", "f1")],
                                       init_std=INIT_STD, random_state=SEED))
test_auc["Deep Crossing"] = train(DeepCrossing(world.schema, embedding_dim=EMBEDDING_DIM,
                                               residual_hidden=(HIDDEN[0],),
                                               init_std=INIT_STD, random_state=SEED))
test_auc["NFM"] = train(NFM(world.schema, embedding_dim=EMBEDDING_DIM, hidden=(HIDDEN[0],),
                            init_std=INIT_STD, random_state=SEED))
test_auc["DeepFM"] = train(DeepFM(world.schema, embedding_dim=EMBEDDING_DIM, hidden=HIDDEN,
                                  init_std=INIT_STD, random_state=SEED))
ceiling = auc(world.test.labels, world.truth["logits"]["test"])

baseline = test_auc["LR (first order)"]
crossing_models = [name for name in test_auc if name != "LR (first order)"]


def pad(text, width):
    """Return ``text`` padded to ``width`` terminal columns (a CJK character takes two)."""
    columns = sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
    return text + " " * max(width - columns, 0)


lesson.say(
    "Share of room = (AUC - AUC of LR) / (AUC of the true logits - AUC of LR).",
    "占可提升空间 = (AUC - LR 的 AUC) / (真实 logit 的 AUC - LR 的 AUC)。",
)
print(pad(lesson.text("model", "模型"), 18) + pad(lesson.text("test AUC", "测试 AUC"), 10)
      + pad("- LR", 9) + lesson.text("share of room", "占可提升空间"))
for name, value in test_auc.items():
    share = (value - baseline) / (ceiling - baseline)
    print(f"{pad(name, 18)}{value:<10.4f}{value - baseline:<+9.4f}{share:.0%}")
print(f"{pad(lesson.text('true logits', '真实 logit'), 18)}{ceiling:<10.4f}"
      f"{ceiling - baseline:<+9.4f}{1:.0%}")
print()

crossing_auc = np.array([test_auc[name] for name in crossing_models])
smallest_gain = crossing_auc.min() - baseline
spread = crossing_auc.max() - crossing_auc.min()
first_step = test_auc["FM"] - baseline
later_steps = crossing_auc.max() - test_auc["FM"]
room_closed = (crossing_auc.max() - baseline) / (ceiling - baseline)

lesson.claim(smallest_gain > 0.08,
             f"every model that crosses features beats the first-order model by at least "
             f"{smallest_gain:.3f} AUC",
             f"每个做特征交叉的模型都比一阶模型高至少 {smallest_gain:.3f} 的 AUC")
lesson.claim(spread < smallest_gain,
             f"the six crossing models differ by at most {spread:.3f} AUC, less than the "
             f"smallest gain of any of them over the first-order model ({smallest_gain:.3f})",
             f"六个交叉模型之间最多相差 {spread:.3f} AUC，小于其中任何一个相对一阶模型的最小"
             f"提升（{smallest_gain:.3f}）")
lesson.claim(first_step > later_steps,
             f"the gains shrink: the first step, crossing at all (LR -> FM), gains "
             f"{first_step:.3f}, more than every later refinement together (FM -> best model, {later_steps:.3f})",
             f"收益递减：第一步，开始做交叉（LR -> FM），提升 {first_step:.3f}，比之后所有改进"
             f"加起来（FM -> 最好的模型，{later_steps:.3f}）还多")
lesson.claim(room_closed > 0.75,
             f"the best model already closes {room_closed:.0%} of the room between the "
             f"first-order model and the true logits, so a better way to cross these features "
             f"has little left to win",
             f"最好的模型已填补一阶模型与真实 logit 之间 {room_closed:.0%} 的空间，"
             f"更好的交叉方式在这些特征上能赢得的已所剩无几")
lesson.say(
    "Which deep model comes first changes with the seed, so no ranking is claimed here. What "
    "crossing alone does not do is where the course goes next: attention (lesson 04) weighs "
    "each feature cross (AFM, lesson 05) and each past behaviour of the user (DIN, lesson 06).",
    "哪个深度模型排第一会随随机种子变化，所以这里不声称任何排名。单靠特征交叉做不到的，"
    "正是课程接下来的内容：注意力机制（第 04 课）为每个交叉特征（AFM，第 05 课）和用户的每个"
    "历史行为（DIN，第 06 课）分配权重。",
)

figure, axes = plt.subplots(figsize=(7.5, 3.8))
names = list(test_auc)
colours = ["tab:gray"] + ["tab:blue"] * (len(names) - 1)
axes.bar(np.arange(len(names)), [test_auc[name] for name in names], color=colours)
axes.axhline(ceiling, color="tab:red", linestyle="--", label=f"true logits ({ceiling:.3f})")
for position, name in enumerate(names):
    axes.text(position, test_auc[name] + 0.004, f"{test_auc[name]:.3f}", ha="center",
              fontsize=8)
axes.set_xticks(np.arange(len(names)))
axes.set_xticklabels(names, rotation=20, ha="right")
axes.set_ylim(0.5, 1.0)
axes.set_ylabel("test AUC")
axes.set_title("Test AUC on one click world: crossing at all matters most")
axes.legend(loc="upper left")
axes.grid(axis="y", alpha=0.3)
figure.tight_layout()
lesson.save_figure(figure, "test_auc.png")

lesson.done()
