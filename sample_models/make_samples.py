#!/usr/bin/python3
"""Trains Quantscope's bundled sample models on Fashion-MNIST and writes them in the Keras 2
full-model HDF5 layout (as tf.keras 2.13 `model.save("m.h5")` writes it).

A tool for us, not needed to build, run or test Quantscope. Uses Debian's python3-torch,
python3-h5py, python3-numpy and the dataset-fashion-mnist package:

    apt-get install python3-torch python3-h5py python3-numpy dataset-fashion-mnist
    /usr/bin/python3 sample_models/make_samples.py [--only NAME] [--epochs-scale F]

Layout conversions (PyTorch -> Keras channels_last):
  Conv2d weight (out, in, kh, kw)            -> Conv2D kernel (kh, kw, in, out)
  depthwise Conv2d weight (in*mult, 1, kh, kw) -> DepthwiseConv2D kernel (kh, kw, in, mult),
                                                 output channel c*mult + m
  Linear weight (out, in)                    -> Dense kernel (in, out)
  Linear after Flatten: PyTorch flattens (C, H, W), Keras (H, W, C): columns are reordered.
  BatchNorm2d (weight, bias, running_mean, running_var, eps) -> gamma, beta, moving_mean,
                                                 moving_variance, epsilon
  Keras 'same' with stride 2 pads (0, 1) on even inputs: PyTorch pads explicitly the same way.
Every model is checked after export by an independent NumPy forward pass over the Keras-layout
weights, which must agree with PyTorch's predictions.
"""
import argparse
import gzip
import json
import math
import os
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = "/usr/share/datasets/fashion-mnist"
GENERATOR = "quantscope sample_models/make_samples.py (PyTorch %s); not written by Keras" % torch.__version__
KERAS_LAYOUT_VERSION = "2.13.1"  # the tf.keras version whose HDF5 layout these files follow
SEED = 20261123


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fmnist():
    xtr = read_idx(f"{DATA}/train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    ytr = read_idx(f"{DATA}/train-labels-idx1-ubyte.gz").astype(np.int64)
    xte = read_idx(f"{DATA}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    yte = read_idx(f"{DATA}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    return xtr, ytr, xte, yte


# ---------------------------------------------------------------- models (PyTorch side)

def pad_same(x, k, s):
    """Keras 'same' padding: total = max((ceil(n/s)-1)*s + k - n, 0), the extra one at the end."""
    n = x.shape[-1]
    out = math.ceil(n / s)
    total = max((out - 1) * s + k - n, 0)
    a = total // 2
    return F.pad(x, (a, total - a, a, total - a))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.d1, self.d2, self.d3 = nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.d3(F.relu(self.d2(F.relu(self.d1(x)))))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 32, 3), nn.BatchNorm2d(32)
        self.c2, self.b2 = nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64)
        self.d1, self.drop, self.d2 = nn.Linear(64 * 7 * 7, 128), nn.Dropout(0.3), nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(pad_same(x, 3, 1)))), 2)
        x = F.max_pool2d(F.relu(self.b2(self.c2(pad_same(x, 3, 1)))), 2)
        return self.d2(self.drop(F.relu(self.d1(x.flatten(1)))))


class DWBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        self.dw, self.bdw = nn.Conv2d(cin, cin, 3, stride=stride, groups=cin), nn.BatchNorm2d(cin)
        self.pw, self.bpw = nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout)

    def forward(self, x):
        x = F.relu6(self.bdw(self.dw(pad_same(x, 3, self.stride))))
        return F.relu6(self.bpw(self.pw(x)))


class DWSep(nn.Module):
    SPEC = [(16, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1)]

    def __init__(self):
        super().__init__()
        self.stem, self.bstem = nn.Conv2d(1, 16, 3), nn.BatchNorm2d(16)
        self.blocks = nn.ModuleList([DWBlock(a, b, s) for a, b, s in self.SPEC])
        self.fc = nn.Linear(128, 10)
        # As in real MobileNets, depthwise channels have very different ranges once BN is folded
        # into them (gamma / sqrt(var) differs per channel). Folding undoes any rescaling between
        # conv and BN, so the spread must live in the BN scales: the depthwise BN gammas are
        # fixed (not trained) log-uniform over [0.01, 4]; the pointwise convs adapt to them.
        g = torch.Generator().manual_seed(SEED)
        for b in self.blocks:
            with torch.no_grad():
                b.bdw.weight.copy_(torch.exp(torch.empty(b.bdw.num_features).uniform_(math.log(0.01), math.log(4.0), generator=g)))
            b.bdw.weight.requires_grad_(False)

    def forward(self, x):
        x = F.relu6(self.bstem(self.stem(pad_same(x, 3, 1))))
        for b in self.blocks:
            x = b(x)
        return self.fc(x.mean((2, 3)))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c0, self.b0 = nn.Conv2d(1, 16, 3), nn.BatchNorm2d(16)
        self.c1a, self.b1a = nn.Conv2d(16, 16, 3), nn.BatchNorm2d(16)
        self.c1b, self.b1b = nn.Conv2d(16, 16, 3), nn.BatchNorm2d(16)
        self.ca, self.ba = nn.Conv2d(16, 16, 1), nn.BatchNorm2d(16)
        self.cb, self.bb = nn.Conv2d(16, 16, 3), nn.BatchNorm2d(16)
        self.c2a, self.b2a = nn.Conv2d(32, 32, 3), nn.BatchNorm2d(32)
        self.c2b, self.b2b = nn.Conv2d(32, 32, 3), nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.b0(self.c0(pad_same(x, 3, 1))))
        y = F.relu(self.b1a(self.c1a(pad_same(x, 3, 1))))
        y = self.b1b(self.c1b(pad_same(y, 3, 1)))
        x = F.max_pool2d(F.relu(x + y), 2)                       # Add, ReLU, MaxPooling2D
        a = F.relu(self.ba(self.ca(x)))
        b = F.relu(self.bb(self.cb(pad_same(x, 3, 1))))
        x = torch.cat([a, b], 1)                                 # Concatenate (channels)
        y = F.relu(self.b2a(self.c2a(pad_same(x, 3, 1))))
        y = self.b2b(self.c2b(pad_same(y, 3, 1)))
        x = F.max_pool2d(F.relu(x + y), 2)
        return self.fc(x.mean((2, 3)))


# ---------------------------------------------------------------- training

def train(model, xtr, ytr, epochs, lr):
    torch.manual_seed(SEED)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * (len(xtr) // 128))
    x = torch.from_numpy(xtr).unsqueeze(1)
    y = torch.from_numpy(ytr)
    g = torch.Generator().manual_seed(SEED)
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        t0, total = time.time(), 0.0
        for i in range(0, len(x) - 127, 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        print(f"  epoch {ep + 1}/{epochs} loss {total / (len(x) // 128):.4f} ({time.time() - t0:.0f}s)", flush=True)


@torch.no_grad()
def predict(model, xte):
    model.eval()
    x = torch.from_numpy(xte).unsqueeze(1)
    return torch.cat([model(x[i:i + 1000]) for i in range(0, len(x), 1000)]).argmax(1).numpy()


# ---------------------------------------------------------------- Keras layout

def k_conv(c):
    return c.weight.detach().numpy().transpose(2, 3, 1, 0)


def k_dw(c):
    w = c.weight.detach().numpy()                  # (in*mult, 1, kh, kw), out = c*mult + m
    cin = c.in_channels
    return w.reshape(cin, w.shape[0] // cin, w.shape[2], w.shape[3]).transpose(2, 3, 0, 1)


def k_bn(b):
    return [b.weight.detach().numpy(), b.bias.detach().numpy(), b.running_mean.numpy(), b.running_var.numpy()]


def k_dense(d, chw=None):
    w = d.weight.detach().numpy()                  # (out, in)
    if chw:                                        # reorder PyTorch's (C,H,W) flatten to Keras' (H,W,C)
        c, h, ww = chw
        w = w.reshape(w.shape[0], c, h, ww).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
    return w.T


def base(name, **kw):
    return {"name": name, "trainable": True, "dtype": "float32", **kw}


def conv_cfg(name, filters, k, padding="same", strides=1, activation="linear"):
    return base(name, filters=filters, kernel_size=[k, k], strides=[strides, strides], padding=padding,
                data_format="channels_last", dilation_rate=[1, 1], groups=1, activation=activation, use_bias=True)


def dw_cfg(name, strides):
    return base(name, kernel_size=[3, 3], strides=[strides, strides], padding="same", data_format="channels_last",
                dilation_rate=[1, 1], activation="linear", use_bias=True, depth_multiplier=1)


def bn_cfg(name, eps):
    return base(name, axis=[3], momentum=0.9, epsilon=float(eps), center=True, scale=True)


def dense_cfg(name, units, activation):
    return base(name, units=units, activation=activation, use_bias=True)


class KerasModel:
    """Collects layers (class, config, inbound, weights) and writes the Keras 2 HDF5 layout."""

    WEIGHT_NAMES = {"Conv2D": ["kernel", "bias"], "Dense": ["kernel", "bias"],
                    "DepthwiseConv2D": ["depthwise_kernel", "bias"],
                    "BatchNormalization": ["gamma", "beta", "moving_mean", "moving_variance"]}

    def __init__(self, functional):
        self.functional = functional
        self.layers = []   # (class, config, inbound names, weights)

    def add(self, cls, cfg, weights=(), inbound=None):
        if inbound is None:
            inbound = [self.layers[-1][1]["name"]] if self.layers else []
        self.layers.append((cls, cfg, inbound, [np.ascontiguousarray(w, dtype=np.float32) for w in weights]))
        return cfg["name"]

    def config(self, name):
        layers = []
        for cls, cfg, inbound, _ in self.layers:
            entry = {"class_name": cls, "config": cfg}
            if self.functional:
                entry["name"] = cfg["name"]
                entry["inbound_nodes"] = [[[n, 0, 0, {}] for n in inbound]] if inbound else []
            layers.append(entry)
        c = {"name": name, "layers": layers}
        if self.functional:
            c["input_layers"] = [[self.layers[0][1]["name"], 0, 0]]
            c["output_layers"] = [[self.layers[-1][1]["name"], 0, 0]]
            return {"class_name": "Functional", "config": c, "keras_version": KERAS_LAYOUT_VERSION, "backend": "tensorflow"}
        return {"class_name": "Sequential", "config": c, "keras_version": KERAS_LAYOUT_VERSION, "backend": "tensorflow"}

    def save(self, path, name):
        tmp = path + ".tmp"
        with h5py.File(tmp, "w") as f:
            f.attrs["keras_version"] = KERAS_LAYOUT_VERSION
            f.attrs["backend"] = "tensorflow"
            f.attrs["model_config"] = json.dumps(self.config(name))
            f.attrs["quantscope_generator"] = GENERATOR
            mw = f.create_group("model_weights")
            mw.attrs["keras_version"] = KERAS_LAYOUT_VERSION
            mw.attrs["backend"] = "tensorflow"
            names = [cfg["name"] for _, cfg, _, _ in self.layers if cfg["name"] != self.layers[0][1]["name"] or not self.functional]
            names = [cfg["name"] for cls, cfg, _, _ in self.layers if cls != "InputLayer"]
            mw.attrs["layer_names"] = np.array([n.encode() for n in names])
            for cls, cfg, _, weights in self.layers:
                if cls == "InputLayer":
                    continue
                g = mw.create_group(cfg["name"])
                wn = [f"{cfg['name']}/{n}:0" for n in self.WEIGHT_NAMES.get(cls, [])][:len(weights)]
                g.attrs["weight_names"] = np.array([n.encode() for n in wn]) if wn else np.zeros((0,), dtype=np.float64)
                for n, w in zip(wn, weights):
                    g.create_dataset(n, data=w)
        os.replace(tmp, path)


def input_layer(km):
    km.add("InputLayer", {"batch_input_shape": [None, 28, 28, 1], "dtype": "float32", "sparse": False,
                          "ragged": False, "name": "input_1"})


def export_mlp(m):
    km = KerasModel(False)
    input_layer(km)
    km.add("Flatten", base("flatten", data_format="channels_last"))
    km.add("Dense", dense_cfg("dense", 256, "relu"), [k_dense(m.d1), m.d1.bias.detach().numpy()])
    km.add("Dense", dense_cfg("dense_1", 128, "relu"), [k_dense(m.d2), m.d2.bias.detach().numpy()])
    km.add("Dense", dense_cfg("dense_2", 10, "softmax"), [k_dense(m.d3), m.d3.bias.detach().numpy()])
    return km


def export_cnn(m):
    km = KerasModel(False)
    input_layer(km)
    for i, (c, b) in enumerate([(m.c1, m.b1), (m.c2, m.b2)]):
        s = "" if i == 0 else f"_{i}"
        km.add("Conv2D", conv_cfg(f"conv2d{s}", c.out_channels, 3), [k_conv(c), c.bias.detach().numpy()])
        km.add("BatchNormalization", bn_cfg(f"batch_normalization{s}", b.eps), k_bn(b))
        km.add("ReLU", base(f"re_lu{s}", max_value=None, negative_slope=0.0, threshold=0.0))
        km.add("MaxPooling2D", base(f"max_pooling2d{s}", pool_size=[2, 2], padding="valid", strides=[2, 2], data_format="channels_last"))
    km.add("Flatten", base("flatten", data_format="channels_last"))
    km.add("Dense", dense_cfg("dense", 128, "relu"), [k_dense(m.d1, (64, 7, 7)), m.d1.bias.detach().numpy()])
    km.add("Dropout", base("dropout", rate=0.3, noise_shape=None, seed=None))
    km.add("Dense", dense_cfg("dense_1", 10, "softmax"), [k_dense(m.d2), m.d2.bias.detach().numpy()])
    return km


def relu6(name):
    return base(name, max_value=6.0, negative_slope=0.0, threshold=0.0)


def export_dwsep(m):
    km = KerasModel(False)
    input_layer(km)
    km.add("Conv2D", conv_cfg("conv2d", 16, 3), [k_conv(m.stem), m.stem.bias.detach().numpy()])
    km.add("BatchNormalization", bn_cfg("batch_normalization", m.bstem.eps), k_bn(m.bstem))
    km.add("ReLU", relu6("re_lu"))
    n = 0
    for i, b in enumerate(m.blocks):
        km.add("DepthwiseConv2D", dw_cfg(f"dw{i + 1}", b.stride), [k_dw(b.dw), b.dw.bias.detach().numpy()])
        km.add("BatchNormalization", bn_cfg(f"dw{i + 1}_bn", b.bdw.eps), k_bn(b.bdw))
        km.add("ReLU", relu6(f"dw{i + 1}_relu6"))
        km.add("Conv2D", conv_cfg(f"pw{i + 1}", b.pw.out_channels, 1), [k_conv(b.pw), b.pw.bias.detach().numpy()])
        km.add("BatchNormalization", bn_cfg(f"pw{i + 1}_bn", b.bpw.eps), k_bn(b.bpw))
        km.add("ReLU", relu6(f"pw{i + 1}_relu6"))
        n += 1
    km.add("GlobalAveragePooling2D", base("global_average_pooling2d", data_format="channels_last", keepdims=False))
    km.add("Dense", dense_cfg("dense", 10, "softmax"), [k_dense(m.fc), m.fc.bias.detach().numpy()])
    return km


def export_resnet(m):
    km = KerasModel(True)
    input_layer(km)

    def conv_bn(name, c, b, k, src, relu=True):
        km.add("Conv2D", conv_cfg(name, c.out_channels, k), [k_conv(c), c.bias.detach().numpy()], [src])
        out = km.add("BatchNormalization", bn_cfg(name + "_bn", b.eps), k_bn(b))
        return km.add("ReLU", base(name + "_relu", max_value=None, negative_slope=0.0, threshold=0.0)) if relu else out

    x = conv_bn("stem", m.c0, m.b0, 3, "input_1")
    y = conv_bn("res1a", m.c1a, m.b1a, 3, x)
    y = conv_bn("res1b", m.c1b, m.b1b, 3, y, relu=False)
    km.add("Add", base("add"), [], [x, y])
    km.add("ReLU", base("add_relu", max_value=None, negative_slope=0.0, threshold=0.0))
    x = km.add("MaxPooling2D", base("pool1", pool_size=[2, 2], padding="valid", strides=[2, 2], data_format="channels_last"))
    a = conv_bn("branch_a", m.ca, m.ba, 1, x)
    b = conv_bn("branch_b", m.cb, m.bb, 3, x)
    x = km.add("Concatenate", base("concat", axis=-1), [], [a, b])
    y = conv_bn("res2a", m.c2a, m.b2a, 3, x)
    y = conv_bn("res2b", m.c2b, m.b2b, 3, y, relu=False)
    km.add("Add", base("add_1"), [], [x, y])
    km.add("ReLU", base("add_1_relu", max_value=None, negative_slope=0.0, threshold=0.0))
    km.add("MaxPooling2D", base("pool2", pool_size=[2, 2], padding="valid", strides=[2, 2], data_format="channels_last"))
    km.add("GlobalAveragePooling2D", base("global_average_pooling2d", data_format="channels_last", keepdims=False))
    km.add("Dense", dense_cfg("dense", 10, "softmax"), [k_dense(m.fc), m.fc.bias.detach().numpy()])
    return km


# ---------------------------------------------------------------- independent NumPy check

def np_forward(km, x):
    """channels_last float64 forward over the Keras-layout weights, as a Keras user would run it."""
    outs = {}
    for cls, cfg, inbound, w in km.layers:
        ins = [outs[n] for n in inbound]
        v = ins[0] if ins else x
        w = [a.astype(np.float64) for a in w]
        if cls == "InputLayer":
            v = x
        elif cls == "Flatten":
            v = v.reshape(v.shape[0], -1)
        elif cls == "Dense":
            v = v @ w[0] + w[1]
        elif cls in ("Conv2D", "DepthwiseConv2D"):
            k = w[0].shape[0]
            s = cfg["strides"][0]
            n = v.shape[1]
            out = math.ceil(n / s)
            total = max((out - 1) * s + k - n, 0)
            a = total // 2
            p = np.pad(v, ((0, 0), (a, total - a), (a, total - a), (0, 0)))
            patches = np.stack([p[:, i:i + (out - 1) * s + 1:s, j:j + (out - 1) * s + 1:s, :]
                                for i in range(k) for j in range(k)], axis=3)          # (N, H, W, k*k, C)
            if cls == "Conv2D":
                v = np.einsum("nhwpc,pco->nhwo", patches, w[0].reshape(k * k, w[0].shape[2], w[0].shape[3])) + w[1]
            else:
                v = np.einsum("nhwpc,pc->nhwc", patches, w[0].reshape(k * k, w[0].shape[2])) + w[1]
        elif cls == "BatchNormalization":
            v = (v - w[2]) / np.sqrt(w[3] + cfg["epsilon"]) * w[0] + w[1]
        elif cls == "ReLU":
            v = np.maximum(v, 0)
            if cfg.get("max_value"):
                v = np.minimum(v, cfg["max_value"])
        elif cls == "MaxPooling2D":
            n, h, ww, c = v.shape
            v = v[:, :h // 2 * 2, :ww // 2 * 2].reshape(n, h // 2, 2, ww // 2, 2, c).max((2, 4))
        elif cls == "GlobalAveragePooling2D":
            v = v.mean((1, 2))
        elif cls == "Add":
            v = ins[0] + ins[1]
        elif cls == "Concatenate":
            v = np.concatenate(ins, axis=-1)
        elif cls == "Dropout":
            pass
        else:
            raise ValueError(cls)
        if cfg.get("activation") == "relu":
            v = np.maximum(v, 0)
        outs[cfg["name"]] = v
    return v


def np_predict(km, xte):
    return np.concatenate([np_forward(km, xte[i:i + 500, :, :, None].astype(np.float64)).argmax(1)
                           for i in range(0, len(xte), 500)])


# ---------------------------------------------------------------- weight-only int8 check (dwsep)

@torch.no_grad()
def int8_weight_accuracy(model, xte, yte, per_channel):
    """Folds each depthwise BN into its conv (as TFLite does) and fake-quantizes the folded
    depthwise kernels symmetric int8 ([-127, 127]); everything else stays float."""
    import copy
    m = copy.deepcopy(model).eval()
    for b in m.blocks:
        scale = b.bdw.weight / torch.sqrt(b.bdw.running_var + b.bdw.eps)
        w = b.dw.weight * scale[:, None, None, None]
        bias = (b.dw.bias - b.bdw.running_mean) * scale + b.bdw.bias
        amax = w.abs().amax(dim=(1, 2, 3), keepdim=True) if per_channel else w.abs().max()
        s = amax / 127.0
        wq = torch.clamp(torch.round(w / s), -127, 127) * s   # torch.round: half to even; ties are rare here
        b.dw.weight.copy_(wq)
        b.dw.bias.copy_(bias)
        b.bdw = nn.Identity()
    return float((predict(m, xte) == yte).mean())


MODELS = {
    "fmnist_mlp": (MLP, export_mlp, 8, 1e-3),
    "fmnist_cnn": (CNN, export_cnn, 5, 1e-3),
    "fmnist_dwsep": (DWSep, export_dwsep, 8, 3e-3),
    "fmnist_resnet": (ResNet, export_resnet, 6, 2e-3),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", action="append")
    ap.add_argument("--epochs-scale", type=float, default=1.0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    xtr, ytr, xte, yte = load_fmnist()
    info_path = os.path.join(HERE, "samples.json")
    info = json.load(open(info_path)) if os.path.exists(info_path) else {"models": {}}
    info["generator"] = GENERATOR
    info["dataset"] = "Fashion-MNIST (Debian dataset-fashion-mnist), 60,000 train / 10,000 test"
    info["preprocessing"] = {"scale": 255.0, "mean": 0.0, "std": 1.0, "shape": [28, 28, 1],
                             "formula": "x = uint8 / 255, reshaped to (28, 28, 1)"}
    for name, (cls, export, epochs, lr) in MODELS.items():
        if args.only and name not in args.only:
            continue
        epochs = max(1, round(epochs * args.epochs_scale))
        print(f"{name}: training {epochs} epochs", flush=True)
        torch.manual_seed(SEED)
        model = cls()
        t0 = time.time()
        train(model, xtr, ytr, epochs, lr)
        train_s = time.time() - t0
        pred = predict(model, xte)
        acc = float((pred == yte).mean())
        km = export(model)
        path = os.path.join(HERE, name + ".h5")
        km.save(path, name)
        np_pred = np_predict(km, xte)
        agree = float((np_pred == pred).mean())
        np_acc = float((np_pred == yte).mean())
        print(f"  torch top-1 {acc:.4f}, numpy (Keras layout) top-1 {np_acc:.4f}, agreement {agree:.4f}", flush=True)
        entry = {
            "file": name + ".h5",
            "bytes": os.path.getsize(path),
            "params": int(sum(p.numel() for p in model.parameters()) +
                          sum(b.numel() for n, b in model.named_buffers() if "running" in n)),
            "float_top1_pytorch": acc,
            "float_top1_numpy_keras_layout": np_acc,
            "numpy_pytorch_agreement": agree,
            "training": {"optimizer": "Adam", "lr": lr, "schedule": "cosine to 0", "batch": 128, "epochs": epochs,
                         "seed": SEED, "threads": 2, "seconds": round(train_s)},
        }
        if name == "fmnist_dwsep":
            entry["int8_depthwise_weights_top1"] = {
                "per_tensor": int8_weight_accuracy(model, xte, yte, False),
                "per_channel": int8_weight_accuracy(model, xte, yte, True),
                "method": "BN folded into each DepthwiseConv2D, folded kernels fake-quantized symmetric int8 "
                          "(max-abs scale), all else float; PyTorch",
            }
            print("  int8 depthwise weights:", entry["int8_depthwise_weights_top1"], flush=True)
        info["models"][name] = entry
        with open(info_path + ".tmp", "w") as f:
            json.dump(info, f, indent=2)
        os.replace(info_path + ".tmp", info_path)


if __name__ == "__main__":
    main()
