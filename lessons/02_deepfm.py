# %% [markdown]
# # 02 · DeepFM: an FM and an MLP side by side on one shared embedding · DeepFM
#
# DeepFM (Guo, Tang, Ye, Li and He, "DeepFM: A Factorization-Machine based Neural Network
# for CTR Prediction", IJCAI 2017) adds the outputs of two parts that read the same field
# embeddings:
#
# $$\hat y = \mathrm{sigmoid}(y_{FM} + y_{DNN})$$
#
# $$y_{FM} = \langle w, x \rangle + \sum_{i=1}^{d} \sum_{j=i+1}^{d}
#   \langle V_i, V_j \rangle\, x_i x_j$$
#
# The FM part (FM 部分) has one "+" unit, the addition unit that computes
# $\langle w, x \rangle$, and one inner-product unit (内积单元) per field pair. The deep
# part (深度部分) is an MLP over the concatenated embeddings $a^{(0)} = [e_1, \dots, e_m]$,
# with $y_{DNN} = W^{(H+1)} a^{(H)} + b^{(H+1)}$. The two parts sit in parallel (并行结构)
# and share one embedding layer (权重共享).
#
# DeepFM 把两个部分的输出相加：FM 部分由一个加法单元（"+"）和每对特征域一个内积单元组成，
# 深度部分是拼接嵌入向量之上的 MLP。两部分并行，共享同一个嵌入层。

# %%
"""Lesson 02: DeepFM, an FM part and a deep part added together over one shared embedding."""

TITLE_EN = "DeepFM: an FM and an MLP side by side on one shared embedding"
TITLE_ZH = "DeepFM：共享嵌入之上并行的 FM 与 MLP"

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
from minirec.metrics import auc  # noqa: E402
from minirec.models.deepfm import DeepFM  # noqa: E402
from minirec.models.fm import FM  # noqa: E402
from minirec.models.fnn import FNN  # noqa: E402
from minirec.models.mlp import MLPModel  # noqa: E402
from minirec.nn.fm import FMInteraction  # noqa: E402
from minirec.nn.pairwise import PairwiseProducts  # noqa: E402
from minirec.train import fit  # noqa: E402

lesson = Lesson("02_deepfm", sys.argv[1:], description=(TITLE_EN, TITLE_ZH))
started = time.perf_counter()
print(lesson.text(TITLE_EN, TITLE_ZH))

# %% [markdown]
# ## 1. The FM part by hand: the "+" unit and the inner-product units · 手算 FM 部分
#
# Three one-hot fields (user, ad, site) with 4, 4 and 3 ids (ids 0 and 1 are padding and
# unknown), so x has d = 11 entries, and K = 5. The numbers:
#
# | feature | w | e (K = 5) |
# |---|---|---|
# | user 2 | 0.2 | (0.5, 1.0, 0.0, -0.5, 0.0) |
# | user 3 | -0.1 | (0.0, 0.5, 0.5, 0.0, 1.0) |
# | ad 2 | 0.1 | (1.0, 0.0, 0.5, 0.0, -0.5) |
# | ad 3 | 0.3 | (0.5, -0.5, 0.0, 1.0, 0.0) |
# | site 2 | -0.4 | (0.0, 1.0, 0.0, 0.5, 0.5) |
#
# Row 0 is (user 2, ad 3, site 2). "+" unit: 0.2 + 0.3 - 0.4 = 0.1. Inner products:
# <u,a> = 0.25 - 0.5 - 0.5 = -0.75, <u,s> = 1.0 - 0.25 = 0.75, <a,s> = -0.5 + 0.5 = 0.
# y_FM = 0.1 + (-0.75 + 0.75 + 0) = 0.1.
# Row 1 is (user 3, ad 3, site 2). "+" unit: -0.1 + 0.3 - 0.4 = -0.2. Inner products:
# <u,a> = -0.25, <u,s> = 0.5 + 0.5 = 1.0, <a,s> = 0. y_FM = -0.2 + 0.75 = 0.55.
#
# 三个独热编码的特征域，K = 5。按上表在纸上算出 "+" 单元、三个内积单元和 y_FM = (0.1, 0.55)。

# %%
lesson.section('1. The FM part by hand: the "+" unit and the inner-product units',
               '1. 手算 FM 部分："+" 单元与内积单元')
lesson.say(
    'The FM part is one "+" unit, <w, x>, plus one inner-product unit <e_i, e_j> for each '
    "pair of fields; y_FM is their sum.",
    'FM 部分由一个 "+" 单元 <w, x> 和每对特征域一个内积单元 <e_i, e_j> 组成；y_FM 是它们的和。',
)

FIELDS = ("user", "ad", "site")
K = 5
schema = Schema([Field("user", "sparse", 4), Field("ad", "sparse", 4),
                 Field("site", "sparse", 3)])
# Rows 0 and 1 (padding, unknown) stay 0, because the real ids start at 2.
FIRST_ORDER = {
    "user": np.array([0.0, 0.0, 0.2, -0.1]),                                   # (4,)
    "ad": np.array([0.0, 0.0, 0.1, 0.3]),                                      # (4,)
    "site": np.array([0.0, 0.0, -0.4]),                                        # (3,)
}
EMBEDDING = {
    "user": np.array([[0.0] * 5, [0.0] * 5,
                      [0.5, 1.0, 0.0, -0.5, 0.0],
                      [0.0, 0.5, 0.5, 0.0, 1.0]]),                             # (4, K)
    "ad": np.array([[0.0] * 5, [0.0] * 5,
                    [1.0, 0.0, 0.5, 0.0, -0.5],
                    [0.5, -0.5, 0.0, 1.0, 0.0]]),                              # (4, K)
    "site": np.array([[0.0] * 5, [0.0] * 5,
                      [0.0, 1.0, 0.0, 0.5, 0.5]]),                             # (3, K)
}
batch = {"user": np.array([2, 3]), "ad": np.array([3, 3]), "site": np.array([2, 2])}
B = 2

# The model, with the numbers above in its tables and deep weights rounded to one decimal
# so that they are easy to read.
model = DeepFM(schema, embedding_dim=K, hidden=(3,), random_state=0)
for name in FIELDS:
    table, offset = model.first_order.table_rows(name)
    table.params["weight"][offset:offset + len(FIRST_ORDER[name]), 0] = FIRST_ORDER[name]
    table, offset = model.embedding.table_rows(name)
    table.params["weight"][offset:offset + len(EMBEDDING[name])] = EMBEDDING[name]
for _, value, _ in model.deep.parameters():
    value[...] = np.round(value, 1) + 0.0          # + 0.0 turns -0.0 into 0.0
# A hidden bias of 0.1 keeps every pre-activation of this batch away from 0, the kink of
# ReLU, where central differences would straddle two slopes.
model.deep.layers[0].params["b"][...] = 0.1

# x and w over all d = 11 features: the blocks user | ad | site
sizes = [schema[name].vocab_size for name in FIELDS]
starts = np.concatenate([[0], np.cumsum(sizes)])                                # (F + 1,)
x = np.zeros((B, starts[-1]))                                                   # (B, d=11)
for f, name in enumerate(FIELDS):
    x[np.arange(B), starts[f] + batch[name]] = 1.0
w = np.concatenate([FIRST_ORDER[name] for name in FIELDS])                      # (d,)
V = np.concatenate([EMBEDDING[name] for name in FIELDS])                        # (d, K)
lesson.show("x (one-hot, user | ad | site)", x)
lesson.show("w", w)
lesson.show("V (one row per feature)", V)

# step 1: the "+" unit
addition_unit = x @ w                                                           # (B,)
lesson.show('"+" unit <w, x>', addition_unit)

# step 2: the field embeddings and one inner-product unit per field pair
E = np.stack([EMBEDDING[name][batch[name]] for name in FIELDS], axis=1)         # (B, F=3, K)
PAIRS = [(0, 1), (0, 2), (1, 2)]
inner_product_units = np.stack([(E[:, i] * E[:, j]).sum(axis=1) for i, j in PAIRS],
                               axis=1)                                          # (B, P=3)
lesson.show("E (field embeddings e_user, e_ad, e_site)", E)
lesson.show("inner-product units <e_i, e_j> for (user,ad), (user,site), (ad,site)",
            inner_product_units)

# step 3: y_FM
y_fm_by_hand = addition_unit + inner_product_units.sum(axis=1)                  # (B,)
lesson.show("y_FM", y_fm_by_hand)
lesson.claim(np.allclose(addition_unit, [0.1, -0.2])
             and np.allclose(inner_product_units, [[-0.75, 0.75, 0.0], [-0.25, 1.0, 0.0]])
             and np.allclose(y_fm_by_hand, [0.1, 0.55]),
             '"+" unit (0.1, -0.2), inner products as worked on paper, y_FM = (0.1, 0.55)',
             '"+" 单元为 (0.1, -0.2)，内积与纸上演算一致，y_FM = (0.1, 0.55)')

# with minirec: the model's own layers, and a plain FM holding the same numbers
E_library = model.embedding.forward(batch)                                      # (B, F, K)
lesson.agree("E", E, E_library)
lesson.agree('"+" unit', addition_unit,
             model.first_order.forward(batch).sum(axis=(1, 2)))
lesson.agree("inner-product units", inner_product_units,
             PairwiseProducts(num_fields=3).forward(E_library).sum(axis=2))
lesson.agree("sum of the inner-product units", inner_product_units.sum(axis=1),
             FMInteraction().forward(E_library))
fm = FM(schema, embedding_dim=K, random_state=0)
for name in FIELDS:
    for source, target in ((model.first_order, fm.first_order), (model.embedding, fm.embedding)):
        source_table, offset = source.table_rows(name)
        target_table, _ = target.table_rows(name)
        target_table.params["weight"][...] = source_table.params["weight"]
lesson.agree("y_FM = an FM with w0 = 0", y_fm_by_hand, fm.forward(batch))

# %% [markdown]
# ## 2. The deep part and the output · 深度部分与输出
#
# The deep part concatenates the three embeddings into $a^{(0)}$ (15 numbers), applies one
# hidden ReLU layer of width 3 and one output unit. The model's output adds the two parts:
# $\hat y = \mathrm{sigmoid}(y_{FM} + y_{DNN})$.
#
# 深度部分把三个嵌入向量拼接成 15 维输入，经过宽度为 3 的 ReLU 隐藏层和一个输出单元；
# 模型输出为 sigmoid(y_FM + y_DNN)。

# %%
lesson.section("2. The deep part and the output", "2. 深度部分与输出")
lesson.say(
    "The deep part is an MLP over the concatenated embeddings; the logit is y_FM + y_DNN.",
    "深度部分是拼接后的嵌入向量之上的 MLP；logit 为 y_FM + y_DNN。",
)
W1, b1 = model.deep.layers[0].params["W"], model.deep.layers[0].params["b"]      # (15, 3), (3,)
W2, b2 = model.deep.layers[2].params["W"], model.deep.layers[2].params["b"]      # (3, 1), (1,)
lesson.show("W1 (deep part, first layer)", W1)
lesson.show("W2 (deep part, output unit)", W2)

a0 = E.reshape(B, -1)                                                           # (B, F K = 15)
hidden_pre = a0 @ W1 + b1                                                       # (B, 3)
hidden = np.maximum(hidden_pre, 0.0)                                            # (B, 3)
y_dnn_by_hand = (hidden @ W2 + b2)[:, 0]                                        # (B,)
lesson.show("a0 = [e_user, e_ad, e_site]", a0)
lesson.show("hidden_pre = a0 W1 + b1", hidden_pre)
lesson.show("hidden = ReLU(a0 W1 + b1)", hidden)
lesson.show("y_DNN", y_dnn_by_hand)
lesson.agree("y_DNN", y_dnn_by_hand, model.deep.forward(E_library.reshape(B, -1))[:, 0])

logit_by_hand = y_fm_by_hand + y_dnn_by_hand                                    # (B,)
probability_by_hand = 1.0 / (1.0 + np.exp(-logit_by_hand))                      # (B,)
lesson.show("logit = y_FM + y_DNN", logit_by_hand)
lesson.show("y_hat = sigmoid(logit)", probability_by_hand)
lesson.agree("DeepFM logits", logit_by_hand, model.forward(batch))
lesson.agree("DeepFM click probabilities", probability_by_hand, model.predict_proba(batch))

# %% [markdown]
# ## 3. The shared embedding and the "red lines" · 共享嵌入与图中的"红线"
#
# Draw the user field as 4 input nodes (one per id) and its embedding as K = 5 units. Each
# input node sends 5 weights to the embedding units. Stacked, they are the 4 × 5 block of
# the table. With one active input, x_user = (0, 0, 1, 0), the product
#
# $$e_{user} = x_{user} V_{user} = 0 \cdot V[0] + 0 \cdot V[1] + 1 \cdot V[2] + 0 \cdot V[3]
#   = V[2] = (0.5, 1.0, 0.0, -0.5, 0.0)$$
#
# selects one row: the field's dense vector is exactly the five weights leaving the active
# input node. Nothing is computed beyond reading those weights.
#
# In the paper's figure of the FM component, red lines are marked "weight-1 connection".
# A weight-1 connection multiplies what it carries by the constant 1, which is never
# trained, so it copies the value unchanged. The red lines from the embedding to the
# inner-product units therefore hand each unit the vectors e_i and e_j themselves, and the
# unit computes <1·e_i, 1·e_j> = <e_i, e_j>. The FM layer adds no parameters of its own:
# its latent vectors V_i are the embedding rows that the deep part reads too.
#
# 把 user 特征域画成 4 个输入节点（每个 id 一个），嵌入层画成 K = 5 个单元。每个输入节点向嵌入单元
# 发出 5 条带权重的连线，这 5 个权重就是嵌入表中的一行。独热输入乘以权重矩阵，就是选出这一行。
# 图中的红线是"权重为 1 的连接"：权重固定为 1、不参与训练，只把嵌入向量原样送进内积单元，
# 因此 FM 层没有自己的参数，它用的隐向量就是深度部分读取的同一组嵌入行。

# %%
lesson.section('3. The shared embedding and the "red lines"', '3. 共享嵌入与图中的"红线"')
lesson.say(
    "K = 5 and one active input per field: the field's dense vector (稠密向量) is the row of "
    "the table selected by the one-hot input, that is, the 5 weights from that input node "
    "to the embedding layer.",
    "K = 5，每个特征域只有一个输入为 1：该特征域的稠密向量就是独热输入选出的那一行，"
    "即从这个输入节点连到嵌入层的 5 个权重。",
)
user_table, user_offset = model.embedding.table_rows("user")
V_user = user_table.params["weight"][user_offset:user_offset + 4]                # (4, K)
x_user = x[0, starts[0]:starts[1]]                                              # (4,)
lesson.show("x_user (row 0)", x_user)
lesson.show("V_user: row r = the 5 weights leaving input node 'user = r'", V_user)
e_user_by_product = x_user @ V_user                                             # (K,)
lesson.show("x_user V_user", e_user_by_product)
lesson.claim(np.array_equal(e_user_by_product, V_user[2])
             and np.array_equal(V_user[2], [0.5, 1.0, 0.0, -0.5, 0.0]),
             "x_user V_user is exactly row 2 of the user block, (0.5, 1.0, 0.0, -0.5, 0.0)",
             "x_user V_user 恰好等于 user 块的第 2 行 (0.5, 1.0, 0.0, -0.5, 0.0)")
lesson.claim(np.array_equal(E_library[0, 0], V_user[2]),
             "the embedding layer's output for the user field is that same row",
             "嵌入层对 user 特征域的输出就是这同一行")

lesson.say(
    'Red lines = weight-1 connections: the constant 1 is not a parameter, so the vectors '
    "reach the inner-product units unchanged and the FM layer has no parameters of its own.",
    "红线 = 权重为 1 的连接：常数 1 不是参数，所以向量原样到达内积单元，FM 层没有自己的参数。",
)
lesson.claim(np.array_equal(1.0 * E_library, E_library)
             and model.interaction.num_parameters() == 0,
             "1 · e = e for every field, and the FM layer (FMInteraction) has 0 parameters",
             "每个特征域都有 1 · e = e，且 FM 层（FMInteraction）的参数个数为 0")
for name, value, _ in model.parameters():
    lesson.say(f"  parameter {name}: shape {value.shape}", f"  参数 {name}：形状 {value.shape}")
tables = [name for name, value, _ in model.parameters()
          if value.ndim == 2 and value.shape[1] == K]
lesson.claim(tables == ["embedding.table.weight"],
             "the model holds one table of K-wide rows, read by both parts",
             "模型只有一张 K 维嵌入表，两个部分都读它")

# After a forward pass each part keeps the input it read, for its backward pass.
model.forward(batch)
fm_part_input = model.interaction._E                                            # (B, F, K)
deep_part_input = model.deep.layers[0]._x                                       # (B, F K)
lesson.claim(np.shares_memory(fm_part_input, deep_part_input)
             and np.array_equal(deep_part_input, fm_part_input.reshape(B, -1)),
             "the FM part and the deep part read the very same array in memory (the deep "
             "part sees it reshaped to (B, F K))",
             "FM 部分与深度部分读取的是内存中同一个数组（深度部分看到的是它变形为 (B, F K) 的视图）")

# %% [markdown]
# ## 4. The gradient reaching the shared embedding · 共享嵌入收到的梯度
#
# Because both parts read the same $e_f$, its gradient is the sum of two terms:
#
# $$\frac{\partial L}{\partial e_f} = \frac{\partial L}{\partial \text{logit}}
#   \Big(\underbrace{\sum_{i \ne f} e_i}_{\text{FM part}}
#   + \underbrace{\big[W_1 \big(\mathbb{1}[h_{pre} > 0] \odot W_2\big)\big]_f}_{\text{deep
#   part}}\Big)$$
#
# The FM term follows from $\partial \langle e_i, e_f \rangle / \partial e_f = e_i$. The
# deep term is the MLP's backward pass cut into the field's K columns. Then every table
# row receives the sum over the batch rows that looked it up (ad id 3 and site id 2 appear
# twice here).
#
# 两个部分读同一个 e_f，所以它的梯度是两项之和：FM 部分给出其他特征域嵌入之和，深度部分给出 MLP
# 反向传播到该特征域 K 列上的梯度。表中每一行再把用到它的所有样本行的梯度相加。

# %%
lesson.section("4. The gradient reaching the shared embedding", "4. 共享嵌入收到的梯度")
lesson.say(
    "dL/de_f = (FM part's gradient) + (deep part's gradient); the table row of each id then "
    "adds the gradients of every batch row that used it.",
    "dL/de_f = FM 部分的梯度 + 深度部分的梯度；每个 id 的表行再把用到它的所有样本行的梯度相加。",
)
dlogit = np.array([1.0, -0.5])                                                  # (B,)
lesson.show("dL/dlogit", dlogit)

# FM part: dlogit * (sum of the other fields' embeddings)
d_E_fm = dlogit[:, None, None] * (E.sum(axis=1, keepdims=True) - E)             # (B, F, K)
# deep part: back through the output unit, the ReLU and the first layer
d_hidden = dlogit[:, None] * W2[:, 0]                                           # (B, 3)
d_hidden_pre = d_hidden * (hidden_pre > 0)                                      # (B, 3)
d_E_deep = (d_hidden_pre @ W1.T).reshape(B, 3, K)                               # (B, F, K)
d_E = d_E_fm + d_E_deep                                                         # (B, F, K)
lesson.show("dL/dE from the FM part", d_E_fm)
lesson.show("dL/dE from the deep part", d_E_deep)

# scatter into the table: one row per id, repeated ids add up
d_table_by_hand = np.zeros((starts[-1], K))                                     # (d, K)
for b in range(B):
    for f, name in enumerate(FIELDS):
        d_table_by_hand[starts[f] + batch[name][b]] += d_E[b, f]
lesson.show("dL/dV (whole table)", d_table_by_hand)

# the library, part by part, then the whole model
model.zero_grad()
model.forward(batch)
lesson.agree("FM part's dL/dE", d_E_fm, model.interaction.backward(dlogit))
lesson.agree("deep part's dL/dE", d_E_deep,
             model.deep.backward(dlogit[:, None]).reshape(B, 3, K))
model.zero_grad()
model.forward(batch)
model.backward(dlogit)
d_table_library = model.embedding.table.grads["weight"].to_dense()
lesson.agree("dL/dV = FM part + deep part", d_table_by_hand, d_table_library)
ad_row = starts[1] + 3
lesson.claim(np.allclose(d_table_library[ad_row],
                         d_E_fm[0, 1] + d_E_fm[1, 1] + d_E_deep[0, 1] + d_E_deep[1, 1]),
             "the row of ad id 3 holds both parts' gradients from both batch rows",
             "ad 的 id 3 这一行含有两个部分、两行样本的梯度之和")
model.zero_grad()

lesson.say("Central differences in float64 over every parameter of the model:",
           "对模型的每个参数做 float64 中心差分检验：")
lesson.gradcheck(check_gradients(model, [batch], name="DeepFM"))

# %% [markdown]
# ## 5. Parallel, not serial · 并行结构与串行结构
#
# FNN (lesson 01) is serial (串行结构): the FM comes first, its vectors become the MLP's
# input, and the logit is the MLP's output alone. The FM's own score no longer appears.
# DeepFM is parallel (并行结构): the FM part and the deep part both read the embedding,
# and their outputs are added. The FM's score therefore reaches the logit directly, with
# weight 1, and the MLP adds what the FM cannot express. Both parts are trained together
# from the start, so DeepFM needs no pre-training.
#
# FNN 是串行结构：先有 FM，FM 的向量成为 MLP 的输入，logit 只来自 MLP。DeepFM 是并行结构：
# FM 部分与深度部分读同一个嵌入，输出相加，两部分从一开始就一起训练，不需要预训练。

# %%
lesson.section("5. Parallel, not serial", "5. 并行结构与串行结构")
lesson.say(
    "DeepFM: logit = y_FM + y_DNN, both parts on the same embedding, trained together. "
    "FNN: logit = MLP(z), with z copied from an FM trained before.",
    "DeepFM：logit = y_FM + y_DNN，两个部分读同一个嵌入，一起训练。"
    "FNN：logit = MLP(z)，z 从先训练好的 FM 复制而来。",
)
y_fm_library = fm.forward(batch)                                                # (B,)
y_dnn_library = model.deep.forward(model.embedding.forward(batch).reshape(B, -1))[:, 0]
lesson.claim(np.allclose(model.forward(batch) - y_dnn_library, y_fm_library),
             "DeepFM's logit minus its deep part's output is exactly the FM's logit",
             "DeepFM 的 logit 减去深度部分的输出，恰好等于 FM 的 logit")
fnn = FNN.from_fm(fm, hidden=(3,), random_state=0)
has_fm_layer = {
    "DeepFM": any(isinstance(module, FMInteraction) for module in model.modules()),
    "FNN": any(isinstance(module, FMInteraction) for module in fnn.modules()),
}
lesson.claim(has_fm_layer == {"DeepFM": True, "FNN": False},
             "DeepFM keeps an FM layer in its forward pass; FNN has none (the FM only gave "
             "its starting values)",
             "DeepFM 的前向传播中保留了 FM 层；FNN 没有 FM 层（FM 只提供了初始值）")

# %% [markdown]
# ## 6. Training: DeepFM against FM alone and the MLP alone · 训练：DeepFM、单独的 FM 与单独的 MLP
#
# The click world (minirec.data.synthetic.make_click_world) plants two kinds of structure.
# The fields f0, f1, f2 interact through inner products, which an FM expresses exactly.
# The fields f3, f4, f5 enter through their product, and its three-way part cannot be
# written as a sum of first-order and pairwise terms, while an MLP can learn it. FM alone
# misses the second kind. The
# MLP alone (DeepFM's deep part without the FM part) has to approximate every inner product
# from concatenated vectors. DeepFM has both parts.
#
# 点击数据中 f0、f1、f2 之间是内积交互，FM 能精确表达；f3、f4、f5 以乘积进入，其三阶部分无法写成
# 一阶项与二阶项之和，但 MLP 能学到。单独的 FM 缺少后者，单独的 MLP 要逼近每个内积，DeepFM 两者兼有。

# %%
lesson.section("6. Training: DeepFM against FM alone and the MLP alone",
               "6. 训练：DeepFM、单独的 FM 与单独的 MLP")
SEED = 0
LEARNING_RATE = 0.02
EPOCHS = 4 if lesson.quick else 8
# 20 ids in the three paired fields keep every id frequent enough for a few epochs.
world = make_click_world(20000, vocab_size=[20, 20, 20, 6, 6, 6], random_state=SEED)
if lesson.quick:
    # Quick mode trains on the first 6000 of the 16000 training rows. The validation and
    # test rows stay the same.
    world = TaskSplits(world.name, world.train.take(np.arange(6000)), world.valid,
                       world.test, world.vocabularies, world.truth)
lesson.say(
    f"Click world: {len(world.train)} training rows, {len(world.valid)} validation rows, "
    f"{len(world.test)} test rows; planted pairs {world.truth['planted_pairs']}, product "
    f"of {list(world.truth['nonlinear_fields'])}.",
    f"点击数据：训练集 {len(world.train)} 行，验证集 {len(world.valid)} 行，测试集 "
    f"{len(world.test)} 行；预设特征对 {world.truth['planted_pairs']}，三个特征域之积 "
    f"{list(world.truth['nonlinear_fields'])}。",
)

# All three get the same embedding size, initial scale and hidden widths. Adam runs every
# epoch, and fit keeps the weights of the epoch with the best validation AUC.
common = dict(embedding_dim=8, init_std=0.3, random_state=SEED)
contenders = {
    "FM alone": FM(world.schema, **common),
    "MLP alone": MLPModel(world.schema, hidden=(32, 16), **common),
    "DeepFM": DeepFM(world.schema, hidden=(32, 16), **common),
}
test_auc = {}
for label, contender in contenders.items():
    result = fit(contender, world, lr=LEARNING_RATE, epochs=EPOCHS, batch_size=256,
                 patience=None, random_state=SEED, verbose=False)
    test_auc[label] = result.test["auc"]
    lesson.say(f"  {label}: test AUC {test_auc[label]:.4f} (best epoch {result.best_epoch})",
               f"  {label}：测试集 AUC {test_auc[label]:.4f}（最佳轮次 {result.best_epoch}）")
truth_auc = auc(world.test.labels, world.truth["logits"]["test"])
lesson.say(f"  the true logits of the world: test AUC {truth_auc:.4f}",
           f"  数据的真实 logit：测试集 AUC {truth_auc:.4f}")

runner_up = max(test_auc["FM alone"], test_auc["MLP alone"])
lesson.claim(test_auc["DeepFM"] > runner_up + 0.02,
             f"DeepFM has the highest test AUC, {test_auc['DeepFM'] - runner_up:.3f} above "
             f"the better of FM alone and the MLP alone",
             f"DeepFM 的测试集 AUC 最高，比单独的 FM 与单独的 MLP 中较好者高 "
             f"{test_auc['DeepFM'] - runner_up:.3f}")
lesson.claim(test_auc["DeepFM"] < truth_auc,
             "no model beats the true logits, which set the ceiling",
             "没有模型超过真实 logit，它是上限")

# The labels inside the figure are English in both languages: Matplotlib's bundled fonts
# have no Chinese glyphs, and a Chinese font cannot be assumed on every machine.
figure, axis = plt.subplots(figsize=(5.6, 4.0))
labels = list(test_auc)
bars = axis.bar(labels, [test_auc[label] for label in labels],
                color=["tab:blue", "tab:orange", "tab:green"])
axis.bar_label(bars, fmt="%.3f")
axis.axhline(truth_auc, color="gray", linestyle="--", label="true logits of the world")
axis.set_ylim(0.5, 1.0)
axis.set_ylabel("test AUC")
axis.set_title(f"Click world, {len(world.train)} training rows, {EPOCHS} epochs")
axis.legend(loc="upper left")
lesson.save_figure(figure, "deepfm_test_auc.png")

lesson.say(f"time: {time.perf_counter() - started:.1f} s",
           f"用时：{time.perf_counter() - started:.1f} 秒")
lesson.done()
