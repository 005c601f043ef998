"""Which engine the ``auto`` backends serve on a CPU: read from /proc/cpuinfo's flags."""

from rrsearch.core.encoders import ENGINE_BACKEND, auto_dtype, cpu_engine, cpu_flags, engine_for, resolve_backend

SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_vnni amx_bf16 amx_tile amx_int8\n"
ZEN4 = "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_vnni avx512_bf16\nbugs\t\t: amx_bf16_is_not_a_flag_here\n"
HASWELL = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"


def test_the_flags_line_alone_decides():
    assert "amx_bf16" in cpu_flags(SAPPHIRE_RAPIDS) and "amx_bf16" not in cpu_flags(ZEN4)
    assert cpu_flags("") == set()


def test_each_kind_of_cpu_gets_its_fastest_engine_within_the_quality_bar():
    assert engine_for(cpu_flags(SAPPHIRE_RAPIDS), openvino_installed=True) == "torch-bf16"
    assert engine_for(cpu_flags(ZEN4), openvino_installed=True) == "openvino-int8"
    assert engine_for(cpu_flags(ZEN4), openvino_installed=False) == "onnx-int8"  # the fallback, logged
    assert engine_for(cpu_flags(HASWELL), openvino_installed=True) == "onnx-int8"


def test_the_setting_overrides_the_cpu_and_cuda_keeps_torch():
    assert cpu_engine("onnx-int8") == "onnx-int8"
    for engine, backend in ENGINE_BACKEND.items():
        assert resolve_backend("auto", "cpu", engine) == backend
    assert resolve_backend("auto", "cuda", "openvino-int8") == "torch"
    assert (resolve_backend("torch", "cpu", "openvino-int8"), resolve_backend("onnx", "cuda")) == ("torch", "onnx")
    assert (auto_dtype("auto", "cpu", "torch-bf16"), auto_dtype("auto", "cpu", "openvino-int8")) == ("bf16", None)
    assert (auto_dtype("torch", "cpu", "torch-bf16"), auto_dtype("auto", "cuda", "torch-bf16")) == (None, None)
