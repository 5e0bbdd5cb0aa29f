# %% [markdown]
# # 01 · FNN: an MLP whose embedding layer starts from a trained FM · 基于因子分解机的神经网络
#
# A factorization machine (FM, 因子分解机) scores a feature vector $x$ with a bias, one
# weight per feature and the inner product (内积) of two latent vectors (隐向量) per pair:
#
# $$\hat y_{FM}(x) = w_0 + \sum_{i=1}^{n} w_i x_i
#   + \sum_{i=1}^{n} \sum_{j=i+1}^{n} \langle v_i, v_j \rangle\, x_i x_j$$
#
# With one-hot fields (特征域) exactly one $x_i = 1$ per field, so the sums run over the
# fields: $\hat y = w_0 + \sum_f w_f + \sum_{f<g} \langle v_f, v_g \rangle$.
#
# FNN (Zhang, Du and Wang, "Deep Learning over Multi-field Categorical Data: A Case Study
# on User Response Prediction", ECIR 2016) trains in two stages. Stage one trains an FM.
# Stage two gives every feature $i$ the dense vector $z_i = [w_i, v_{i1}, \dots, v_{iK}]$
# taken from that FM (pre-training, 预训练). It concatenates the vectors of the active
# features, one per field, and trains an MLP on top:
#
# $$z = [z_1, \dots, z_F], \qquad l_1 = \tanh(W_1 z + b_1), \qquad
#   \hat y = \mathrm{sigmoid}(W_L\, l_{L-1} + b_L)$$
#
# FM 用偏置、一阶权重和每对特征隐向量的内积打分。FNN 分两步训练：先训练 FM，再把每个特征的
# [w_i, v_i] 作为嵌入层的初始值，拼接各特征域的稠密向量，送入 MLP 继续训练。

# %%
"""Lesson 01: FNN, an MLP over per-field vectors [w_i, v_i] taken from a trained FM."""

TITLE_EN = "FNN: an MLP whose embedding layer starts from a trained FM"
TITLE_ZH = "FNN：用训练好的 FM 初始化嵌入层的 MLP"

import sys
import time

import numpy as np

from minirec.lesson import Lesson, use_agg_backend

use_agg_backend()

import matplotlib.pyplot as plt  # noqa: E402

from minirec.data.dataset import TaskSplits  # noqa: E402
from minirec.data.schema import Field, Schema  # noqa: E402
from minirec.data.synthetic import make_click_world  # noqa: E402
from minirec.gradcheck import check_gradients  # noqa: E402
from minirec.models.deep_crossing import DeepCrossing  # noqa: E402
from minirec.models.fm import FM  # noqa: E402
from minirec.models.fnn import FNN  # noqa: E402
from minirec.train import fit  # noqa: E402

lesson = Lesson("01_fnn", sys.argv[1:], description=(TITLE_EN, TITLE_ZH))
started = time.perf_counter()
print(lesson.text(TITLE_EN, TITLE_ZH))

# %% [markdown]
# ## 1. The FM by hand · 手算 FM
#
# Three one-hot fields (user, ad, site) and K = 2. Ids 0 and 1 are reserved (padding and
# unknown), so the real values start at id 2. The FM's numbers:
#
# | field | id | w | v |
# |---|---|---|---|
# | user | 2 | 0.3 | (0.5, 1.0) |
# | user | 3 | -0.2 | (-0.5, 0.5) |
# | ad | 2 | 0.1 | (1.0, 0.0) |
# | ad | 3 | 0.4 | (0.5, -1.0) |
# | site | 2 | -0.1 | (1.0, 0.5) |
#
# and w0 = -0.5. Row 0 is (user 2, ad 3, site 2):
# linear part 0.3 + 0.4 - 0.1 = 0.6; pairs <u,a> = 0.25 - 1.0 = -0.75, <u,s> = 0.5 + 0.5 = 1.0,
# <a,s> = 0.5 - 0.5 = 0; logit = -0.5 + 0.6 + 0.25 = 0.35.
# Row 1 is (user 3, ad 3, site 2): linear -0.2 + 0.4 - 0.1 = 0.1; pairs -0.25 - 0.5 = -0.75,
# -0.5 + 0.25 = -0.25 and 0; logit = -0.5 + 0.1 - 1.0 = -1.4.
#
# 三个独热编码的特征域，K = 2，按上表的数字在纸上算出两行的 logit：0.35 和 -1.4。

# %%
lesson.section("1. The FM by hand", "1. 手算 FM")
lesson.say(
    "Three one-hot fields (user, ad, site), K = 2. With one active feature per field the FM "
    "logit is w0 + sum_f w_f + sum_{f<g} <v_f, v_g>.",
    "三个独热编码的特征域（user、ad、site），K = 2。每个特征域只有一个取值为 1 的特征，"
    "所以 FM 的 logit 为 w0 + sum_f w_f + sum_{f<g} <v_f, v_g>。",
)

FIELDS = ("user", "ad", "site")
schema = Schema([Field("user", "sparse", 4), Field("ad", "sparse", 4),
                 Field("site", "sparse", 3)])
W0 = -0.5
# Rows 0 and 1 (padding, unknown) stay 0, because the real ids start at 2.
FIRST_ORDER = {
    "user": np.array([0.0, 0.0, 0.3, -0.2]),                                # (4,)
    "ad": np.array([0.0, 0.0, 0.1, 0.4]),                                   # (4,)
    "site": np.array([0.0, 0.0, -0.1]),                                     # (3,)
}
LATENT = {
    "user": np.array([[0.0, 0.0], [0.0, 0.0], [0.5, 1.0], [-0.5, 0.5]]),    # (4, K=2)
    "ad": np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.5, -1.0]]),      # (4, K=2)
    "site": np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.5]]),                 # (3, K=2)
}
batch = {"user": np.array([2, 3]), "ad": np.array([3, 3]), "site": np.array([2, 2])}
for name in FIELDS:
    lesson.show(f"w[{name}]", FIRST_ORDER[name])
    lesson.show(f"v[{name}]", LATENT[name])
lesson.show("batch ids (user, ad, site) per row",
            np.stack([batch[name] for name in FIELDS], axis=1))

# step 1: the weights and latent vectors of the active features
w_active = np.stack([FIRST_ORDER[name][batch[name]] for name in FIELDS], axis=1)  # (B=2, F=3)
v_active = np.stack([LATENT[name][batch[name]] for name in FIELDS], axis=1)       # (B, F, K)
lesson.show("w_active", w_active)
lesson.show("v_active", v_active)

# step 2: one inner product per field pair (user, ad), (user, site), (ad, site)
PAIRS = [(0, 1), (0, 2), (1, 2)]
inner_products = np.stack([(v_active[:, i] * v_active[:, j]).sum(axis=1)
                           for i, j in PAIRS], axis=1)                           # (B, P=3)
lesson.show("<v_f, v_g> for (user,ad), (user,site), (ad,site)", inner_products)

# step 3: the logit
fm_logit_by_hand = W0 + w_active.sum(axis=1) + inner_products.sum(axis=1)        # (B,)
lesson.show("logit = w0 + sum w + sum <v, v>", fm_logit_by_hand)
lesson.claim(np.allclose(fm_logit_by_hand, [0.35, -1.4]),
             "the logits are 0.35 and -1.4, as worked on paper",
             "两行的 logit 为 0.35 和 -1.4，与纸上演算一致")

# the same FM in minirec: its tables hold the numbers above
fm = FM(schema, embedding_dim=2, random_state=0)
fm.params["w0"][...] = W0
for name in FIELDS:
    table, offset = fm.first_order.table_rows(name)
    table.params["weight"][offset:offset + len(FIRST_ORDER[name]), 0] = FIRST_ORDER[name]
    table, offset = fm.embedding.table_rows(name)
    table.params["weight"][offset:offset + len(LATENT[name])] = LATENT[name]
lesson.agree("FM logits", fm_logit_by_hand, fm.forward(batch))
lesson.agree("FM pair inner products", inner_products, fm.pair_interactions(batch))

# %% [markdown]
# ## 2. Stage two: z_i = [w_i, v_i] from the FM · 第二步：从 FM 取出 z_i = [w_i, v_i]
#
# FNN's embedding layer (嵌入层) gives feature i the K + 1 = 3 numbers [w_i, v_i1, v_i2].
# Row 0 (user 2, ad 3, site 2) becomes
# z = [0.3, 0.5, 1.0 | 0.4, 0.5, -1.0 | -0.1, 1.0, 0.5], nine inputs of the MLP.
# `FNN.from_fm` copies every row of the FM into the FNN's tables and starts the output unit's
# bias at w0. The paper feeds w0 to the first hidden layer as one more input. A constant
# input only duplicates that layer's bias, so minirec puts w0 in the output bias instead.
#
# FNN 的嵌入层给每个特征 K + 1 = 3 个数 [w_i, v_i1, v_i2]，FNN.from_fm 把 FM 的每一行复制过来，
# 并把 w0 作为输出单元偏置的初始值（论文把 w0 作为第一隐藏层的一个输入，常数输入只会重复该层的偏置）。

# %%
lesson.section("2. Stage two: z_i = [w_i, v_i] from the FM",
               "2. 第二步：从 FM 取出 z_i = [w_i, v_i]")
lesson.say(
    "FNN gives each feature the dense vector (稠密向量) z_i = [w_i, v_i] of its FM: the "
    "first-order weight followed by the latent vector, K + 1 = 3 numbers.",
    "FNN 给每个特征一个稠密向量 z_i = [w_i, v_i]，取自训练好的 FM：一阶权重后接隐向量，"
    "共 K + 1 = 3 个数。",
)

# by hand: glue the first-order column to the latent rows, field by field
fnn_tables_by_hand = {name: np.column_stack([FIRST_ORDER[name], LATENT[name]])
                      for name in FIELDS}                                       # (V_f, K + 1)
Z_by_hand = np.stack([fnn_tables_by_hand[name][batch[name]] for name in FIELDS],
                     axis=1)                                                    # (B, F, K + 1)
z_by_hand = Z_by_hand.reshape(2, -1)                                            # (B, F (K + 1))
lesson.show("table [w, v] of user", fnn_tables_by_hand["user"])
lesson.show("z = [z_user, z_ad, z_site]", z_by_hand)
lesson.claim(np.allclose(z_by_hand[0], [0.3, 0.5, 1.0, 0.4, 0.5, -1.0, -0.1, 1.0, 0.5]),
             "row 0 gives z = [0.3, 0.5, 1.0 | 0.4, 0.5, -1.0 | -0.1, 1.0, 0.5]",
             "第 0 行得到 z = [0.3, 0.5, 1.0 | 0.4, 0.5, -1.0 | -0.1, 1.0, 0.5]")

# with minirec: stage two built from the FM
fnn = FNN.from_fm(fm, hidden=(4,), random_state=0)
for name in FIELDS:
    table, _ = fnn.embedding.table_rows(name)
    lesson.agree(f"FNN table of {name}", fnn_tables_by_hand[name], table.params["weight"])
Z_library = fnn.embedding.forward(batch)                                         # (B, F, K + 1)
lesson.agree("z of the batch", Z_by_hand, Z_library)
output_bias = fnn.mlp.layers[-1].params["b"]
lesson.claim(output_bias[0] == W0 and fnn.initialized_from == "fm",
             f"the output unit's bias starts at the FM's w0 = {output_bias[0]}",
             f"输出单元的偏置从 FM 的 w0 = {output_bias[0]} 开始")

# %% [markdown]
# ## 3. Every field has its own embedding layer · 每个特征域有自己的嵌入层
#
# Write the whole input as one one-hot vector x of 4 + 4 + 3 = 11 entries. The embedding
# layer is then a matrix of 11 rows and 9 columns, but a block-diagonal one: the user
# block (4 × 3) feeds only z_user, the ad block only z_ad, the site block only z_site. A
# one-hot block times its matrix selects one row, so x W equals the concatenated rows.
# A fully connected 11 × 9 layer would have 99 weights, while the three blocks have 33.
#
# 把整条输入写成 11 维的独热向量 x，嵌入层就是一个 11 × 9 的分块对角矩阵：每个特征域的独热块只连到
# 本特征域的 3 个单元。独热块乘以它的矩阵就是选出一行。全连接需要 99 个权重，分块只需要 33 个。

# %%
lesson.section("3. Every field has its own embedding layer", "3. 每个特征域有自己的嵌入层")
lesson.say(
    "Each field's one-hot block connects only to that field's K + 1 embedding units. In "
    "matrix form the embedding layer is block-diagonal, one block per field.",
    "每个特征域的独热编码只连接到本特征域的 K + 1 个嵌入单元。写成矩阵，嵌入层是分块对角的，"
    "每个特征域一块。",
)
sizes = [schema[name].vocab_size for name in FIELDS]
starts = np.concatenate([[0], np.cumsum(sizes)])                                # (F + 1,)
K1 = 3
x_one_hot = np.zeros((2, starts[-1]))                                           # (B, 11)
block_diagonal = np.zeros((starts[-1], len(FIELDS) * K1))                       # (11, F (K + 1))
for f, name in enumerate(FIELDS):
    x_one_hot[np.arange(2), starts[f] + batch[name]] = 1.0
    table, _ = fnn.embedding.table_rows(name)
    block_diagonal[starts[f]:starts[f + 1], f * K1:(f + 1) * K1] = table.params["weight"]
lesson.show("x (one-hot, user | ad | site)", x_one_hot)
lesson.show("embedding layer as one block-diagonal matrix", block_diagonal)
lesson.agree("x W = z", x_one_hot @ block_diagonal, Z_library.reshape(2, -1))

tables = [fnn.embedding.table_rows(name)[0] for name in FIELDS]
separate = not fnn.embedding.single_table and all(
    not np.shares_memory(a.params["weight"], b.params["weight"])
    for index, a in enumerate(tables) for b in tables[index + 1:])
lesson.claim(separate,
             "the FNN keeps three separate tables, one per field (no memory shared)",
             "FNN 有三张独立的表，每个特征域一张（互不共享内存）")
n_embedding = fnn.embedding.num_parameters()
lesson.claim(n_embedding == sum(sizes) * K1 == 33,
             f"the embedding layer has {n_embedding} weights = 11 ids × 3, not 11 × 9 = 99",
             f"嵌入层共有 {n_embedding} 个权重 = 11 个 id × 3，而不是全连接的 11 × 9 = 99 个")

# %% [markdown]
# ## 4. How FNN differs from Deep Crossing · FNN 与 Deep Crossing 的区别
#
# Deep Crossing (Shan et al., KDD 2016) also embeds every field, concatenates ("stacks") the
# vectors and feeds them to a deep network. The differences:
#
# | | FNN | Deep Crossing |
# |---|---|---|
# | embedding start | the trained FM's [w_i, v_i] (two stages) | random (one end-to-end stage) |
# | field vector | K + 1 numbers | K numbers |
# | hidden layers | plain tanh layers | residual units (残差单元) |
#
# A residual unit adds its input back before the last ReLU:
# $\mathrm{out} = \mathrm{ReLU}(s + W_1\,\mathrm{ReLU}(W_0 s + b_0) + b_1)$, so the two
# layers only learn the change $r$ to their input.
#
# Deep Crossing 同样对每个特征域做嵌入并拼接，但嵌入层随机初始化、一步端到端训练，每个特征域的向量
# 只有 K 个数，深度部分由残差单元组成：残差单元在最后的 ReLU 之前把输入加回来。

# %%
lesson.section("4. How FNN differs from Deep Crossing", "4. FNN 与 Deep Crossing 的区别")
lesson.say(
    "Deep Crossing starts its embedding from random numbers and trains everything in one "
    "stage; its deep part is a stack of residual units (残差单元). FNN starts from the FM "
    "and its hidden layers have no skip connection.",
    "Deep Crossing 的嵌入层从随机数开始，全部参数一步端到端训练；深度部分由残差单元堆叠而成。"
    "FNN 的嵌入层从 FM 开始，隐藏层没有跳跃连接。",
)
# init_std=0.5 only makes the random numbers big enough to read (minirec's default is 0.01).
deep_crossing = DeepCrossing(schema, embedding_dim=2, residual_hidden=(3,), init_std=0.5,
                             random_state=0)
dc_table, dc_offset = deep_crossing.embedding.table_rows("user")
dc_user_rows = dc_table.params["weight"][dc_offset:dc_offset + 4]                # (4, K=2)
lesson.show("Deep Crossing's user rows at the start (random)", dc_user_rows)
lesson.show("FNN's user rows at the start (from the FM)", fnn_tables_by_hand["user"])
lesson.claim(dc_user_rows.shape == (4, 2) and not np.allclose(dc_user_rows, LATENT["user"]),
             "Deep Crossing's field vector has K = 2 numbers, drawn at random, not taken "
             "from an FM",
             "Deep Crossing 的特征域向量有 K = 2 个数，是随机初始化的，不来自 FM")

# a residual unit by hand, on the stacked embeddings of the batch
unit = deep_crossing.residual_units[0]
s = deep_crossing.embedding.forward(batch).reshape(2, -1)                         # (B, F K = 6)
W_inner, b_inner = unit.inner.params["W"], unit.inner.params["b"]                 # (6, 3), (3,)
W_outer, b_outer = unit.outer.params["W"], unit.outer.params["b"]                 # (3, 6), (6,)
hidden = np.maximum(s @ W_inner + b_inner, 0.0)                                   # (B, 3)
residual = hidden @ W_outer + b_outer                                             # (B, 6)
unit_out_by_hand = np.maximum(s + residual, 0.0)                                  # (B, 6)
lesson.show("s (stacked embeddings)", s)
lesson.show("r = W1 ReLU(W0 s + b0) + b1", residual)
lesson.show("out = ReLU(s + r)", unit_out_by_hand)
lesson.agree("residual unit", unit_out_by_hand, unit.forward(s))
layer_names = [type(layer).__name__ for layer in fnn.mlp.layers]
lesson.claim(layer_names == ["Linear", "Tanh", "Linear"],
             f"FNN's deep part is {' -> '.join(layer_names)}: no skip connection",
             f"FNN 的深度部分为 {' -> '.join(layer_names)}：没有跳跃连接")

# %% [markdown]
# ## 5. Backward through the embedding lookup · 嵌入查表的反向传播
#
# The lookup copies a row: $z_f[b] = T_f[\mathrm{id}_f[b]]$. In one-hot form
# $z_f = x_f T_f$, so $\partial L / \partial T_f = x_f^\top\, \partial L / \partial z_f$:
# row r of the table receives the sum of the upstream gradients of every batch row whose id
# is r. An id used twice gets two gradients added, and rows not used get nothing, which is
# why minirec keeps the gradient sparse (only the used rows).
#
# With the upstream gradient below, ad id 3 appears in both rows, so its row receives
# (1, 2, 3) + (10, 20, 30) = (11, 22, 33); site id 2 also appears twice and receives
# (-1, 0, 1) + (2, 2, 2) = (1, 2, 3).
#
# 查表就是复制一行，所以表的第 r 行的梯度是所有 id 为 r 的样本行的上游梯度之和：重复的 id 梯度相加，
# 没用到的行梯度为 0，因此 minirec 只保存用到的行（稀疏梯度）。

# %%
lesson.section("5. Backward through the embedding lookup", "5. 嵌入查表的反向传播")
lesson.say(
    "dL/dT_f[r] = sum of dL/dz_f[b] over the rows b whose id is r: repeated ids add up.",
    "dL/dT_f[r] 等于所有 id 为 r 的样本行的 dL/dz_f[b] 之和：重复出现的 id，梯度相加。",
)
dZ = np.array([[[0.1, 0.2, 0.3], [1.0, 2.0, 3.0], [-1.0, 0.0, 1.0]],
               [[0.4, 0.5, 0.6], [10.0, 20.0, 30.0], [2.0, 2.0, 2.0]]])          # (B, F, K + 1)
lesson.show("dL/dz (upstream gradient)", dZ)

grads_by_hand = {}
for f, name in enumerate(FIELDS):
    # as a loop: every row adds its gradient into the row of its id
    d_table = np.zeros((schema[name].vocab_size, K1))                             # (V_f, K + 1)
    for b in range(2):
        d_table[batch[name][b]] += dZ[b, f]
    # as a matrix product: x_f^T dz_f
    x_f = x_one_hot[:, starts[f]:starts[f + 1]]                                   # (B, V_f)
    lesson.claim(np.allclose(d_table, x_f.T @ dZ[:, f]),
                 f"{name}: the loop and x_f^T dz_f give the same table gradient",
                 f"{name}：循环累加与 x_f^T dz_f 得到相同的表梯度")
    grads_by_hand[name] = d_table
lesson.show("dL/dT_ad", grads_by_hand["ad"])
lesson.claim(np.allclose(grads_by_hand["ad"][3], [11.0, 22.0, 33.0])
             and np.allclose(grads_by_hand["site"][2], [1.0, 2.0, 3.0]),
             "ad id 3 receives (11, 22, 33) and site id 2 receives (1, 2, 3): the two "
             "rows' gradients add up",
             "ad 的 id 3 得到 (11, 22, 33)，site 的 id 2 得到 (1, 2, 3)：两行的梯度相加")

fnn.zero_grad()
fnn.embedding.forward(batch)
fnn.embedding.backward(dZ)
for name in FIELDS:
    table, _ = fnn.embedding.table_rows(name)
    lesson.agree(f"dL/dT_{name}", grads_by_hand[name], table.grads["weight"].to_dense())
rows, values = fnn.embedding.table_rows("ad")[0].grads["weight"].coalesce()
lesson.show("rows of the ad table with a gradient", rows)
lesson.show("their summed gradients", values)
lesson.claim(rows.tolist() == [3],
             "the sparse gradient of the ad table holds one row, id 3",
             "ad 表的稀疏梯度只含一行，即 id 3")
fnn.zero_grad()

lesson.say("Central differences in float64 confirm the backward pass, on this batch whose "
           "ad and site ids repeat:",
           "用 float64 中心差分验证反向传播（这个批次里 ad 和 site 的 id 重复出现）：")
lesson.gradcheck(check_gradients(fnn.embedding, [batch], name="FNN embedding layer"))
lesson.gradcheck(check_gradients(fnn, [batch], name="FNN (embedding + MLP)"))

# %% [markdown]
# ## 6. Training: FNN from the FM against FNN from random numbers · 训练：FM 初始化与随机初始化
#
# The click world (minirec.data.synthetic.make_click_world) draws labels from a known logit:
# first-order effects, three planted field pairs with inner-product interactions and a
# three-field product. Stage one trains an FM on it. Stage two trains two FNNs with the same
# MLP, one built with `FNN.from_fm`, one from random rows (std 0.01, minirec's default). The
# FM-initialised network starts from the FM's knowledge, so its validation loss after the
# first epoch is lower.
#
# 在点击数据上先训练 FM，再分别训练 FM 初始化和随机初始化（标准差 0.01）的两个 FNN，
# 比较第一轮之后的验证集损失：从 FM 出发的网络起点更好，损失更低。

# %%
lesson.section("6. Training: FNN from the FM against FNN from random numbers",
               "6. 训练：FM 初始化与随机初始化的 FNN")
SEED = 0
LEARNING_RATE = 0.02
HIDDEN = (32, 16)
# 20 ids in the three paired fields keep every id frequent enough for a few epochs.
world = make_click_world(20000, vocab_size=[20, 20, 20, 6, 6, 6], random_state=SEED)
if lesson.quick:
    # Quick mode trains on the first 6000 of the 16000 training rows. The validation and
    # test rows stay the same.
    world = TaskSplits(world.name, world.train.take(np.arange(6000)), world.valid,
                       world.test, world.vocabularies, world.truth)
fm_epochs, fnn_epochs = (4, 2) if lesson.quick else (8, 5)
lesson.say(
    f"Click world: {len(world.train)} training rows, {len(world.valid)} validation rows, "
    f"{len(world.test)} test rows; fields {[f.name for f in world.schema]}.",
    f"点击数据：训练集 {len(world.train)} 行，验证集 {len(world.valid)} 行，"
    f"测试集 {len(world.test)} 行；特征域 {[f.name for f in world.schema]}。",
)


def train(model, epochs, batch_size):
    """Train with Adam, keeping every epoch (no early stopping), and return the result."""
    return fit(model, world, lr=LEARNING_RATE, epochs=epochs, batch_size=batch_size,
               patience=None, random_state=SEED, verbose=False)


# The stage-two batch size gives the first epoch about 60 to 90 steps in both modes: enough
# for the MLP to start reading its input, few enough that the starting point still shows.
stage_two_batch_size = 64 if lesson.quick else 256
stage_one = FM(world.schema, embedding_dim=8, init_std=0.1, random_state=SEED)
fm_result = train(stage_one, fm_epochs, 256)
from_fm_result = train(FNN.from_fm(stage_one, hidden=HIDDEN, random_state=SEED), fnn_epochs,
                       stage_two_batch_size)
random_result = train(FNN(world.schema, embedding_dim=8, hidden=HIDDEN, random_state=SEED),
                      fnn_epochs, stage_two_batch_size)

click_rate = float(world.train.labels.mean())
valid_labels = world.valid.labels
base_rate_loss = float(-np.mean(valid_labels * np.log(click_rate)
                                + (1 - valid_labels) * np.log(1 - click_rate)))
first_from_fm = from_fm_result.history[0]["valid_loss"]
first_random = random_result.history[0]["valid_loss"]
lesson.say(
    f"validation loss after epoch 1: FNN from FM {first_from_fm:.4f}, FNN from random "
    f"rows {first_random:.4f}; predicting the training click rate {click_rate:.3f} for "
    f"every row gives {base_rate_loss:.4f}.",
    f"第 1 轮后的验证集损失：FM 初始化的 FNN 为 {first_from_fm:.4f}，随机初始化的 FNN 为 "
    f"{first_random:.4f}；对每一行都预测训练集点击率 {click_rate:.3f} 时为 {base_rate_loss:.4f}。",
)
lesson.claim(first_from_fm < first_random,
             "after one epoch the FNN started from the FM has the lower validation loss",
             "训练一轮后，FM 初始化的 FNN 验证集损失更低")
lesson.claim(first_from_fm < base_rate_loss - 0.02,
             "after one epoch the FM-initialised FNN is already well below the loss of "
             "predicting the click rate everywhere",
             "训练一轮后，FM 初始化的 FNN 的损失已明显低于处处预测平均点击率的损失")
auc_from_fm, auc_random = from_fm_result.test["auc"], random_result.test["auc"]
lesson.say(
    f"test AUC: FM {fm_result.test['auc']:.4f}, FNN from FM {auc_from_fm:.4f}, FNN from "
    f"random rows {auc_random:.4f}.",
    f"测试集 AUC：FM {fm_result.test['auc']:.4f}，FM 初始化的 FNN {auc_from_fm:.4f}，"
    f"随机初始化的 FNN {auc_random:.4f}。",
)
lesson.claim(auc_from_fm > auc_random,
             f"after {fnn_epochs} epochs the FNN started from the FM still ranks the test "
             f"clicks better",
             f"训练 {fnn_epochs} 轮后，FM 初始化的 FNN 对测试集的排序仍然更好")
lesson.say(
    "The planted pairs of this world are inner products. The FM computes them directly, "
    "while the MLP over the concatenated vectors has to approximate every product. DeepFM "
    "(lesson 02) keeps the FM part next to the MLP for this reason.",
    "这个数据中预设的特征对交互是内积。FM 直接计算内积，而拼接向量之上的 MLP 只能去逼近每个"
    "乘积。DeepFM（第 02 课）因此把 FM 部分与 MLP 并列保留。",
)

# The labels inside the figure are English in both languages: Matplotlib's bundled fonts
# have no Chinese glyphs, and a Chinese font cannot be assumed on every machine.
figure, axis = plt.subplots(figsize=(6.4, 4.0))
for result, label, style in ((from_fm_result, "FNN from the FM", "o-"),
                             (random_result, "FNN from random rows", "s-")):
    epochs = [entry["epoch"] for entry in result.history]
    axis.plot(epochs, [entry["valid_loss"] for entry in result.history], style, label=label)
axis.axhline(fm_result.valid["loss"], color="tab:green", linestyle=":",
             label="the FM of stage one")
axis.axhline(base_rate_loss, color="gray", linestyle="--",
             label="predict the click rate everywhere")
axis.set_xticks(range(1, fnn_epochs + 1))
axis.set_xlabel("epoch of stage two")
axis.set_ylabel("validation loss (cross-entropy)")
axis.set_title("FNN: first epochs with and without the FM initialisation")
axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
lesson.save_figure(figure, "fnn_first_epochs.png")

lesson.say(f"time: {time.perf_counter() - started:.1f} s",
           f"用时：{time.perf_counter() - started:.1f} 秒")
lesson.done()
