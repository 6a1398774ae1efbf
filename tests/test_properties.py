"""Property tests (hypothesis): any config values validate or raise `ConfigError`, never another exception;
any lattice dims and ratios give tier counts equal to a brute-force count over all pairs of cells."""
import dataclasses, math, sys
from pathlib import Path
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cellnet3d.config import CellNetConfig, ConfigError, LatticeConfig, _FIELD_PART  # noqa: E402
from cellnet3d.lattice import cell_coords, tier_counts  # noqa: E402

FIELDS = sorted(_FIELD_PART)

# What a user can put in a JSON config or a --set value, and a bit more (bytes, big ints, subnormals, nan, inf).
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-3, 300), st.floats(allow_nan=True, allow_infinity=True),
                    st.floats(0, 1), st.text(max_size=12), st.sampled_from(["local", "distant", "mean", "dialogue", "bundled", ""]),
                    st.binary(max_size=4))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner, inner),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=8)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS), values, min_size=1, max_size=4))
def test_any_field_values_validate_or_raise_config_error(changes):
    try: cfg = CellNetConfig().replace(**changes)
    except ConfigError: return
    assert CellNetConfig.from_json(cfg.to_json()) == cfg            # what validates also round-trips


@settings(max_examples=300, deadline=None)
@given(st.one_of(values, st.dictionaries(st.sampled_from(["lattice", "model", "train", "other"]),
                                         st.one_of(values, st.dictionaries(st.sampled_from(FIELDS + ["stepz"]), values, max_size=4)),
                                         max_size=3)))
def test_any_json_config_loads_or_raises_config_error(d):
    try: CellNetConfig.from_dict(d)
    except ConfigError: pass


ratios = st.floats(0.01, 1.0, allow_nan=False)

@settings(max_examples=150, deadline=None)
@given(dims=st.tuples(*[st.integers(2, 7)] * 3), radius=st.floats(0.05, 1.0), r=st.lists(ratios, min_size=3, max_size=3, unique=True))
def test_tier_counts_equal_brute_force(dims, radius, r):
    local, functional, distant = sorted(r)
    try: lat = LatticeConfig(dims=dims, adaptive_radius_ratio=radius, local_distance_ratio=local,
                             functional_distance_ratio=functional, distant_distance_ratio=distant)
    except ConfigError: assume(False)
    xyz = cell_coords(dims)                                           # [N, 3]
    d2 = ((xyz[:, None] - xyz[None]) ** 2).sum(-1).double()           # [N, N] squared distances, exact integers
    tol = 1e-9                                                        # "d <= threshold", up to float rounding of the threshold
    within = [d2 <= (t + tol) ** 2 for t in lat.get_distance_thresholds()]
    tiers = [within[0] & (d2 > 0), within[1] & ~within[0], within[2] & ~within[1]]
    brute = torch.stack([t.sum(1) for t in tiers], 1)                 # [N, 3]
    assert torch.equal(tier_counts(lat), brute), (dims, lat.get_distance_thresholds())
