"""Which precision the ``auto`` backends choose on a CPU: read from /proc/cpuinfo's flags."""

from rrsearch.core.encoders import cpu_serves_bf16, has_amx_bf16

SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_vnni amx_bf16 amx_tile amx_int8\n"
ICE_LAKE = "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_vnni\nbugs\t\t: amx_bf16_is_not_a_flag_here\n"


def test_amx_bf16_is_read_from_the_flags_line_only():
    assert has_amx_bf16(SAPPHIRE_RAPIDS)
    assert not has_amx_bf16(ICE_LAKE)
    assert not has_amx_bf16("")


def test_the_setting_overrides_the_cpu():
    assert cpu_serves_bf16(True) and not cpu_serves_bf16(False)
