"""Authorization benchmark: bastion, pycasbin's FastEnforcer and cedarpy on the same model,
printed side by side in one run (in process, no network; every loop is bounded).

    python bench/authz/run.py [--quick]

Model: 10,000 users, 1,000 groups, 200 roles (inheritance depth <= 5), 100,000 bindings,
50 resource types x 6 actions, scoped and unscoped credentials.

1. RBAC + scopes per decision: bastion (compiled per-principal look-ups) against pycasbin's
   FastEnforcer and cedarpy (the model as policies, the whole entity graph pre-parsed).
   Targets: bastion p99 <= 5 us and >= 10x faster than both. The decisions of all three are
   compared on the measured requests.
2. Memory of bastion's compiled model for every principal (target <= 300 MB resident).
3. A decision with Cedar policies: bastion's whole decision (RBAC, rules, Cedar on the sliced
   entities) against cedarpy's own call on the same sliced entities, at 1,000, 10,000 and
   100,000 users. Targets: <= 1.2x cedarpy's call, flat (within 1.5x) across sizes.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import casbin
import cedarpy

sys.path.insert(0, str(Path(__file__).parent))
from model import (  # bench/authz/model.py, beside this file
    ACTIONS,
    CASBIN_MODEL,
    NOW,
    Model,
    casbin_lines,
    cedar_entities,
    cedar_rbac_policies,
    cedar_request,
    generate,
    requests,
)

from bastion.core.cedar_schema import generate_schema
from bastion.core.grants import BindingGrant, compile_access
from bastion.core.model import Principal, PrincipalKind, Tenant
from bastion.core.rbac import Permission, RoleDefinition, compile_roles
from bastion.core.resource_rules import RuleIndex
from bastion.services.authz import Authorizer, AuthzContext, AuthzRequest, Subject
from bastion.services.authz_model import AuthzSettings, TenantModel
from bastion.services.policies import PolicyEngine

TENANT = Tenant("ten_bench", "default", NOW)


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def timed(call: Callable[[Any], Any], items: list[Any], budget_s: float) -> list[float]:
    """Per-call latencies in microseconds; stops early when ``budget_s`` is spent."""
    samples: list[float] = []
    clock = time.perf_counter_ns
    deadline = time.monotonic() + budget_s
    for item in items:
        start = clock()
        call(item)
        samples.append((clock() - start) / 1000)
        if len(samples) % 256 == 0 and time.monotonic() > deadline:
            break
    return samples


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(name: str, samples: list[float]) -> tuple[str, float, float, int]:
    return name, pct(samples, 0.5), pct(samples, 0.99), len(samples)


def print_rows(rows: list[tuple[str, float, float, int]]) -> None:
    print(f"  {'':46} {'p50 us':>10} {'p99 us':>10} {'n':>8}")
    for name, p50, p99, n in rows:
        print(f"  {name:46} {p50:10.2f} {p99:10.2f} {n:8d}")


def bastion_world(model: Model, users: list[str]) -> tuple[Authorizer, dict[str, Subject]]:
    """The compiled model: the catalog and every listed principal's compiled access."""
    definitions = [
        RoleDefinition(name, tuple(Permission(r, a) for r, a in perms), tuple(inherits))
        for name, (perms, inherits) in model.roles.items()
    ]
    catalog = compile_roles(definitions)
    tenant_model = TenantModel(TENANT, catalog, RuleIndex(()), {})
    authorizer = Authorizer(settings=AuthzSettings(roles=definitions))
    by_subject: dict[str, list[BindingGrant]] = {}
    for index, (_, subject, role, expires) in enumerate(model.bindings):
        by_subject.setdefault(subject, []).append(BindingGrant(role, f"binding b{index}", expires))
    subjects = {}
    for user in users:
        groups = tuple(model.user_groups[user])
        offered = by_subject.get(user, []) + [
            g for group in groups for g in by_subject.get(group, [])
        ]
        access = compile_access(offered, catalog, now=NOW)
        principal = Principal(user, TENANT.id, PrincipalKind.USER, user, NOW)
        subjects[user] = Subject(principal, tenant_model, groups, access)
    return authorizer, subjects


def casbin_enforcer(model: Model) -> casbin.FastEnforcer:
    """pycasbin loaded through its file adapter (adding 100,000 links one call at a time
    takes minutes; loading the same lines from a file takes under a second)."""
    p, g, g2 = casbin_lines(model)
    with tempfile.TemporaryDirectory() as tmp:
        conf, csv = Path(tmp) / "model.conf", Path(tmp) / "policy.csv"
        conf.write_text(CASBIN_MODEL)
        lines = [f"p, {', '.join(r)}" for r in p] + [f"g, {', '.join(r)}" for r in g]
        lines += [f"g2, {', '.join(r)}" for r in g2]
        csv.write_text("\n".join(lines) + "\n")
        return casbin.FastEnforcer(str(conf), str(csv))


def bench_rbac(model: Model, count: int) -> None:
    print("\n== 1. RBAC + scopes, one decision (10,000 users, 100,000 bindings) ==")
    gc.collect()
    rss0 = rss_mb()
    tracemalloc.start()
    started = time.perf_counter()
    authorizer, subjects = bastion_world(model, model.users)
    compile_s = time.perf_counter() - started
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = rss_mb()
    context = AuthzContext(time=NOW)
    reqs = requests(model, count)
    scoped = {i: tuple(s) if s is not None else None for i, s in enumerate(model.credentials)}
    prepared = [(subjects[u], AuthzRequest(r, a, context), scoped[c]) for u, r, a, c in reqs]

    def decide(item: tuple[Subject, AuthzRequest, tuple[str, ...] | None]) -> bool:
        return authorizer.authorize(item[0], item[1], scopes=item[2]).allowed

    # Warm up as a running gateway is: each credential's scopes are indexed on its first
    # request (warming only the first 2,000 requests left about 300 of the 843 credentials
    # measured cold, and their one-off index build was the whole p99).
    for scopes in set(scoped.values()):
        authorizer.scope_index(scopes)
    for item in prepared[:2000]:
        decide(item)
    gc.collect()
    gc.freeze()
    bastion = timed(decide, prepared, 30)
    # The machine's own speed, for scale: DESIGN.md 11's "dict look-up RBAC check", no reasons.
    hot = {(r, a) for r in model.resources for a in ACTIONS[:3]}
    reference = timed(lambda item: (item[1].resource, item[1].action) in hot, prepared, 10)
    answers = [decide(item) for item in prepared]

    enforcer = casbin_enforcer(model)
    casbin_items = [(u, r, a, "none" if c == 0 else f"cred{c}") for u, r, a, c in reqs]
    casbin_times = timed(lambda item: enforcer.enforce(*item), casbin_items[:3000], 40)
    casbin_answers = [enforcer.enforce(*item) for item in casbin_items[: len(casbin_times)]]

    policies = cedarpy.PolicySet.from_str(cedar_rbac_policies(model))
    entities = cedarpy.Entities.from_json_str(cedar_entities(model))
    cedar_items = [cedar_request(*request) for request in reqs]
    cedar_times = timed(
        lambda item: cedarpy.is_authorized(item, policies, entities), cedar_items[:3000], 40
    )
    cedar_answers = [
        cedarpy.is_authorized(item, policies, entities).allowed
        for item in cedar_items[: len(cedar_times)]
    ]

    rows = [
        row("bastion (compiled per-principal look-ups)", bastion),
        row("(reference: one Python set look-up)", reference),
        row("pycasbin FastEnforcer", casbin_times),
        row("cedarpy (policies + whole entity graph)", cedar_times),
    ]
    print_rows(rows)
    b50, b99 = rows[0][1], rows[0][2]
    print(
        f"  ratio p99: pycasbin / bastion = {rows[2][2] / b99:.0f}x, "
        f"cedarpy / bastion = {rows[3][2] / b99:.0f}x   (target >= 10x; bastion p99 <= 5 us)"
    )
    print(
        f"  ratio p50: pycasbin / bastion = {rows[2][1] / b50:.0f}x, "
        f"cedarpy / bastion = {rows[3][1] / b50:.0f}x"
    )
    allowed = sum(answers)
    print(
        f"  decisions: {allowed} allow / {len(answers) - allowed} deny; disagreements with "
        f"pycasbin {sum(x != y for x, y in zip(answers, casbin_answers, strict=False))}"
        f"/{len(casbin_answers)}, with cedarpy "
        f"{sum(x != y for x, y in zip(answers, cedar_answers, strict=False))}"
        f"/{len(cedar_answers)}"
    )
    print("\n== 2. Memory of bastion's compiled model ==")
    print(
        f"  {len(subjects)} principals compiled in {compile_s:.1f} s; "
        f"traced allocations {traced / 1e6:.0f} MB; resident growth {rss1 - rss0:.0f} MB "
        f"(process {rss1:.0f} MB; target <= 300 MB)"
    )
    gc.unfreeze()


POLICIES = """
@id("deletes-from-inside")
forbid(principal, action == Action::"delete", resource)
unless { context has clientIp && context.clientIp.isInRange(ip("10.0.0.0/8")) };

@id("manage-needs-mfa")
forbid(principal, action == Action::"manage", resource) unless { context.mfa };

@id("group0-reads")
permit(principal in Group::"group0001", action == Action::"read", resource);

@id("role0-executes-res00")
permit(principal in Role::"role000", action == Action::"execute", resource is res00);

@id("api-keys-no-manage")
forbid(principal, action == Action::"manage", resource) when { context.authMethod == "apikey" };
"""


def bench_cedar(model_for: Callable[[int], Model], sizes: list[int], count: int) -> None:
    print(
        "\n== 3. Decision with Cedar policies: bastion's whole decision vs cedarpy's own call "
        "on the same sliced entities =="
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.cedar"
        path.write_text(POLICIES)
        for size in sizes:
            model = model_for(size)
            schema = generate_schema(model.resources, ACTIONS)
            engine = PolicyEngine(files=[path], schema=json.dumps(schema), clock=lambda: NOW)
            engine.load()
            reqs = requests(model, count, seed=size)
            users = sorted({u for u, _, _, _ in reqs})
            authorizer, subjects = bastion_world(model, users)
            authorizer.policies = engine
            context = AuthzContext(
                time=NOW, client_ip="192.0.2.1", auth_method="apikey", route={"method": "GET"}
            )
            items = [(subjects[u], AuthzRequest(r, a, context, "x")) for u, r, a, _ in reqs]
            for subject, request in items:  # warm the per-principal slices, as in service
                authorizer.authorize(subject, request, scopes=None)
            state = engine.state
            assert state is not None
            baseline_inputs = [
                engine.inputs(s, q, tenant="default", roles=s.access.roles) for s, q in items
            ]
            gc.collect()
            gc.freeze()
            whole = timed(lambda i, a=authorizer: a.authorize(i[0], i[1], scopes=None), items, 30)
            own = timed(
                lambda i, p=state.policies: cedarpy.is_authorized(i[0], p, i[1]),
                baseline_inputs,
                30,
            )
            gc.unfreeze()
            results.append(
                (
                    size,
                    row(f"bastion, {size:,} users", whole),
                    row(f"cedarpy own call, {size:,} users", own),
                )
            )
    rows = [r for _, b, c in results for r in (b, c)]
    print_rows(rows)
    for size, b, c in results:
        print(
            f"  {size:>7,} users: bastion / cedarpy p50 = {b[1] / c[1]:.2f}x, "
            f"p99 = {b[2] / c[2]:.2f}x   (target <= 1.2x)"
        )
    first, last = results[0][1], results[-1][1]
    print(
        f"  flatness: bastion p50 at {results[-1][0]:,} / at {results[0][0]:,} users = "
        f"{last[1] / first[1]:.2f}x, p99 {last[2] / first[2]:.2f}x   (target <= 1.5x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller model, for a smoke run")
    parser.add_argument("--only", choices=("rbac", "cedar"), help="run one part")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    started = time.perf_counter()
    model = generate(
        users=10_000 // scale,
        groups=1_000 // scale,
        roles=200,
        bindings=100_000 // scale,
        resources=50,
    )
    print(
        f"model: {len(model.users):,} users, {len(model.groups):,} groups, "
        f"{len(model.roles)} roles, {len(model.bindings):,} bindings, "
        f"{len(model.resources)} resource types x {len(ACTIONS)} actions, "
        f"{len(model.credentials) - 1} scoped credentials (generated in "
        f"{time.perf_counter() - started:.1f} s)"
    )
    if args.only != "cedar":
        bench_rbac(model, 20_000)
    del model
    gc.collect()

    def scaled(users: int) -> Model:
        return generate(
            users=users,
            groups=max(10, users // 10),
            roles=200,
            bindings=users * 3,
            resources=50,
            seed=users,
        )

    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    if args.only != "rbac":
        bench_cedar(scaled, sizes, 5_000)


if __name__ == "__main__":
    main()
