"""Cells of a deployed DARTS network: the same sums and concatenations, computed with less float traffic.

`DeployedCell` computes what `binas.nets.EvalCell` computes in eval mode, with changes that leave every
value as it is (sums rounded once, as in the cell):

* an op without parameters or buffers (max/avg pooling, skip) applied to the same state twice is computed
  once (DARTS-V2's reduction cell pools each input two or three times);
* with `output_bits` (chosen by `deploy_cells` for the native engine), the cell's output is the sign bits
  of the concatenation instead of the float concatenation. That is all its consumers read when each is a
  1-bit conv: the next cells' preprocessing (a 1x1 1-bit conv, or a `FactorizedReduce` of two). The last
  cell, whose output is pooled for the classifier, keeps floats;
* on the native engine, a node whose op ends with a 1x1 1-bit conv is computed in that conv's pass
  (`DeployedCell`), and a cell input read only by 1-bit convs is produced as signs (`_sign_only_inputs`).

`DeployedFactorizedReduce` is a `FactorizedReduce` that also takes sign bits (its offset grids are taken on
the bits, zero bits padding an odd side: a padded 0 signs to +1, as in the trained network).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from binas.export import native
from binas.export.integer_conv import IntegerConv2d
from binas.export.signs import pair
from binas.nets.network import EvalCell, Network
from binas.space.ops import FactorizedReduce


def _stateless_key(op: nn.Module) -> str | None:
    """A key equal for two ops that compute the same function of their input (no parameters, no buffers,
    same configuration); None for an op with state."""
    if any(True for _ in op.parameters()) or any(True for _ in op.buffers()):
        return None
    return repr(op)


def steps(seq: nn.Sequential) -> list[nn.Module]:
    """The modules `seq` runs one after the other, through nested `nn.Sequential`s, without `nn.Identity`."""
    out: list[nn.Module] = []
    for module in seq:
        if isinstance(module, nn.Sequential):
            out.extend(steps(module))
        elif not isinstance(module, nn.Identity):
            out.append(module)
    return out


def _op_steps(op: nn.Module) -> list[nn.Module]:
    """The modules an op runs one after the other (itself, unless it is an `nn.Sequential`)."""
    return steps(op) if isinstance(op, nn.Sequential) else [op]


def _node_conv(op: nn.Module) -> tuple[list[nn.Module], IntegerConv2d] | None:
    """(the steps before, the last conv) of an op whose last conv can compute a whole node (`fuses_nodes`)."""
    chain = _op_steps(op)
    last = chain[-1] if chain else None
    if isinstance(last, IntegerConv2d) and last.fuses_nodes():
        return chain[:-1], last
    return None


class DeployedCell(nn.Module):
    """An `EvalCell` for inference (module docstring); built from a cell whose convs are already deployed.

    On the native engine a node whose op ends with a 1x1 1-bit conv is computed by that conv in one pass:
    its value plus the node's other op (no separate sum), written as floats only when a later op of the
    cell reads it, and as sign bits straight into the concatenation when the cell outputs bits.
    """

    def __init__(self, cell: EvalCell) -> None:
        super().__init__()
        self.preprocess0, self.preprocess1, self.ops = cell.preprocess0, cell.preprocess1, cell.ops
        self.indices, self.concat, self.multiplier = cell.indices, cell.concat, cell.multiplier
        self.reduction = cell.reduction
        self.keys = [_stateless_key(op) for op in cell.ops]
        self.node_convs = [_node_conv(op) for op in cell.ops]
        self.output_bits = False

    def _op(self, j: int, states: list[Tensor | None], shared: dict[tuple[str, int], Tensor]) -> tuple[Tensor, bool]:
        """Op j's output, and whether it is a fresh tensor nobody else holds (may be summed into in place)."""
        key, x = self.keys[j], states[self.indices[j]]
        assert x is not None, "a state read by an op is kept as floats"
        if key is None:
            return self.ops[j](x), True
        if (key, self.indices[j]) not in shared:
            shared[(key, self.indices[j])] = self.ops[j](x)
        return shared[(key, self.indices[j])], False

    def _fused_node(
        self, node: int, states: list[Tensor | None], shared: dict[tuple[str, int], Tensor], target: native.NodeTarget
    ) -> tuple[bool, Tensor | None]:
        """(done, value) of a node computed by the last conv of one of its ops (class docstring)."""
        for j, other in ((2 * node + 1, 2 * node), (2 * node, 2 * node + 1)):
            fusable, x = self.node_convs[j], states[self.indices[j]]
            if fusable is None or x is None or x.device.type != "cpu":
                continue
            addend, owned = self._op(other, states, shared)
            before, last = fusable
            for module in before:
                x = module(x)
            try:
                return True, last.node(x, addend, target, in_place=owned)
            except NotImplementedError:  # no one-pass kernel on this CPU: the same node, step by step
                value = last(x).add_(addend)
                if target.cat is not None:
                    native.pack_sign_bits_into(value, target.cat, target.offset)
                return True, value
        return False, None

    def forward(self, s0: Tensor, s1: Tensor, drop_prob: float = 0.0) -> Tensor:
        states: list[Tensor | None] = [self.preprocess0(s0), self.preprocess1(s1)]
        shared: dict[tuple[str, int], Tensor] = {}
        bits = self.output_bits and not torch.onnx.is_in_onnx_export()
        fuse = not torch.onnx.is_in_onnx_export()
        cat, channels = None, int(states[0].shape[1])  # type: ignore[union-attr]
        if bits:
            n, _, h, w = states[0].shape  # type: ignore[union-attr]
            size = ((h + 1) // 2, (w + 1) // 2) if self.reduction else (h, w)
            cat = native.empty((n, *size, native.words(channels * len(self.concat))), native.BITS_DTYPE).zero_()
        read = set(self.indices) | (set() if bits else set(self.concat))  # states needed as floats
        for node in range(len(self.ops) // 2):
            index = 2 + node
            in_cat = bits and index in self.concat
            offset = self.concat.index(index) * channels if in_cat else 0
            target = native.NodeTarget(index in read, cat if in_cat else None, offset)
            done, value = self._fused_node(node, states, shared, target) if fuse else (False, None)
            if not done:
                (a, a_owned), (b, b_owned) = (self._op(j, states, shared) for j in (2 * node, 2 * node + 1))
                value = a.add_(b) if a_owned else b.add_(a) if b_owned else a + b
                if in_cat:
                    native.pack_sign_bits_into(value, cat, offset)  # type: ignore[arg-type]
            states.append(value)
        if cat is not None:
            return cat
        return torch.cat([states[i] for i in self.concat], dim=1)  # type: ignore[misc]


class DeployedFactorizedReduce(FactorizedReduce):
    """`FactorizedReduce` whose input may be sign bits (N, H, W, words) for its two 1-bit convs."""

    def __init__(self, fr: FactorizedReduce) -> None:
        super().__init__(fr.pre, fr.conv_a, fr.conv_b, fr.post)

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype != native.BITS_DTYPE:
            return super().forward(x)
        even, odd = x[:, ::2, ::2], x[:, 1::2, 1::2]
        pad = (0, 0, 0, even.shape[2] - odd.shape[2], 0, even.shape[1] - odd.shape[1])
        odd = nn.functional.pad(odd, pad)
        return self.post(torch.cat([self.conv_a(even.contiguous()), self.conv_b(odd.contiguous())], dim=1))


def _reads_bits(module: nn.Module) -> bool:
    """Whether `module`'s first step is a 1-bit conv on the native engine that reads sign bits."""
    if isinstance(module, DeployedFactorizedReduce):
        pre = list(module.pre.children()) if isinstance(module.pre, nn.Sequential) else [module.pre]
        return not pre and all(_reads_bits(c) for c in (module.conv_a, module.conv_b))
    if isinstance(module, nn.Sequential):
        steps = [m for m in module if not isinstance(m, nn.Identity)]
        return bool(steps) and _reads_bits(steps[0])
    return isinstance(module, IntegerConv2d) and module.prefers_bits()


def _first_conv(op: nn.Module) -> IntegerConv2d | None:
    chain = _op_steps(op)
    first = chain[0] if chain else None
    return first if isinstance(first, IntegerConv2d) and first.native_supported() else None


def _sign_only_inputs(cell: DeployedCell) -> None:
    """A cell input (preprocessed state) read only by ops that start with a native 1-bit conv is produced as
    signs (int8, or bits when every reader is dense) by its preprocessing conv: no float map is written."""
    for index, pre in ((0, cell.preprocess0), (1, cell.preprocess1)):
        readers = [_first_conv(op) for op, i in zip(cell.ops, cell.indices) if i == index]
        chain = steps(pre) if isinstance(pre, nn.Sequential) else []
        last = chain[-1] if chain else None
        if not readers or any(r is None for r in readers) or index in cell.concat:
            continue
        if isinstance(last, IntegerConv2d) and last.native_supported() and not last.sign_output:
            last.output_sign(bits=all(r.prefers_bits() for r in readers))  # type: ignore[union-attr]


def _route_bits(cells: list[DeployedCell]) -> int:
    """Let each cell whose consumers (the next cell's preprocess1, the one after's preprocess0) all read sign
    bits output the bits of its concatenation; how many do. The last cell's output is pooled (floats); an
    auxiliary head only runs in training."""
    routed = 0
    for i, cell in enumerate(cells):
        consumers = [c.preprocess1 for c in cells[i + 1 : i + 2]] + [c.preprocess0 for c in cells[i + 2 : i + 3]]
        if consumers and all(_reads_bits(c) for c in consumers):
            cell.output_bits = True
            routed += 1
    return routed


def deploy_cells(net: nn.Module, native_pooling: bool, pass_signs: bool = True) -> int:
    """Swap every `EvalCell` of each `Network` in `net` for a `DeployedCell` (and its `FactorizedReduce`s for
    `DeployedFactorizedReduce`s; with `native_pooling`, max pools for `NativeMaxPool2d`s). With `pass_signs`,
    cell inputs read only by 1-bit convs are produced as signs and cells hand sign bits to the next cells
    where every consumer reads bits. Returns how many cells output bits."""
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, FactorizedReduce) and not isinstance(child, DeployedFactorizedReduce):
                setattr(module, name, DeployedFactorizedReduce(child))
            elif native_pooling and NativeMaxPool2d.supports(child):
                setattr(module, name, NativeMaxPool2d(child))  # type: ignore[arg-type]
    routed = 0
    for network in [m for m in net.modules() if isinstance(m, Network)]:
        cells = network.cells
        for i, cell in enumerate(cells):
            if isinstance(cell, EvalCell):
                cells[i] = DeployedCell(cell)
        deployed = [c for c in cells if isinstance(c, DeployedCell)]
        if pass_signs and len(deployed) == len(cells):
            for cell in deployed:
                _sign_only_inputs(cell)
            routed += _route_bits(deployed)
    return routed


class NativeMaxPool2d(nn.Module):
    """`nn.MaxPool2d` (dilation 1, floor mode, no indices) on the native kernels, for CPU float inputs."""

    def __init__(self, pool: nn.MaxPool2d) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = (pair(v) for v in (pool.kernel_size, pool.stride, pool.padding))

    @staticmethod
    def supports(pool: nn.Module) -> bool:
        return (
            type(pool) is nn.MaxPool2d
            and pair(pool.dilation) == [1, 1]
            and not pool.ceil_mode
            and not pool.return_indices
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or x.dtype != torch.float32 or torch.onnx.is_in_onnx_export():
            return nn.functional.max_pool2d(x, self.kernel_size, self.stride, self.padding)
        return native.max_pool(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, native"
