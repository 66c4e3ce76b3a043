#!/usr/bin/env python3
"""Summarise `perf script -F comm,tid,ip,sym` output (stdin) of a roomgate run.

Prints (1) where the samples' leaf frames fall (kernel, malloc, crate), (2) the
inclusive share of named pipeline steps (a sample counts for a step when the step is
anywhere on its stack), (3) the top user-space leaf symbols. DWARF stacks are cut at the
sampled stack size, so outer frames are sometimes missing: inclusive shares are lower
bounds.
"""
import collections
import re
import sys

STEPS = [
    ("proxy::handle (whole pipeline, lower bound)", r"roomgate::proxy::handle"),
    ("auth: token::verify", r"roomgate::auth::token::verify"),
    ("  unverified_kid (base64 + serde_json::Value, header and payload)", r"token::unverified_kid"),
    ("  jsonwebtoken::decode (parses header+claims again, HMAC)", r"jsonwebtoken::decoding::decode"),
    ("  HMAC-SHA256 itself", r"jsonwebtoken::crypto::verify"),
    ("  serde_json (all)", r"serde_json::de"),
    ("headers::ensure_request_id (UUID, getrandom)", r"headers::ensure_request_id"),
    ("getrandom syscall", r"getrandom"),
    ("header hygiene (check/strip/forwarded)",
     r"(headers::(Names::of|Names::strip_identity|Names::strip_hop_by_hop|strip_cookie)|forwarded::decide)"),
    ("route resolve + canonical host/path + rebuild_uri",
     r"route::|RouteTable|canonical_(host|path)|rebuild_uri"),
    ("set_identity (X-MESHAGENT-* headers, api scope to_string)", r"proxy::set_identity"),
    ("metrics (prometheus-client families)", r"prometheus_client"),
    ("tracing", r"^tracing(_core|_subscriber)?::"),
    ("forward::Upstreams::forward (client side)", r"forward::Upstreams::forward"),
    ("  hyper_util legacy client send_request", r"legacy::client::Client<C,B>::send_request"),
    ("  hyper_util pool (checkout, idle list, mutex)", r"hyper_util::client::legacy::pool"),
    ("hyper h1 parse (server+client)", r"Http1Transaction>::parse"),
    ("hyper h1 encode (server+client)", r"Http1Transaction>::encode"),
    ("timers / clock (Instant::now, clock_gettime, tokio time)", r"clock_gettime|tokio::runtime::time|Instant::now"),
    ("task wakeups / spawn (tokio scheduler)", r"tokio::runtime::scheduler::.*(schedule|spawn)|Handle::current|Waker"),
    ("malloc/free (libc)", r"^(__GI___libc_malloc|malloc|_int_malloc|_int_free|__GI___libc_free|cfree|malloc_consolidate|unlink_chunk|tcache_)"),
    ("syscalls (all, kernel side)", r"^entry_SYSCALL"),
    ("  writev (incl. loopback delivery to the peer)", r"^(do_writev|__GI___writev)$"),
    ("  recvfrom", r"__sys_recvfrom"),
    ("  epoll_wait", r"epoll_wait"),
]


def stacks(lines):
    cur = None
    for line in lines:
        if not line.strip():
            if cur is not None:
                yield cur
            cur = None
            continue
        if not line.startswith((" ", "\t")):
            cur = []
            continue
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and cur is not None:
            cur.append(re.sub(r"\+0x[0-9a-f]+$", "", parts[1]).replace(" (inlined)", ""))
    if cur:
        yield cur


def bucket(stack):
    leaf = stack[0]
    if any(f.startswith(("entry_SYSCALL", "asm_", "ret_from_fork")) for f in stack) and "::" not in leaf \
            and not re.match(r"(__GI_|malloc|_int_|cfree|tcache|__vdso)", leaf):
        return "kernel"
    if re.match(r"(__GI___libc_malloc|malloc|_int_malloc|_int_free|__GI___libc_free|cfree|malloc_consolidate|unlink_chunk|tcache_)", leaf):
        return "libc malloc/free"
    if re.search(r"mem(move|cpy|set|cmp)", leaf):
        return "libc mem*"
    m = re.match(r"[<&]*([a-z_][a-z_0-9]*)::", leaf)
    return m.group(1) if m else "other (libc, vdso)"


def main():
    all_stacks = [s for s in stacks(sys.stdin) if s]
    n = len(all_stacks)
    if not n:
        print("no samples")
        return
    print(f"samples: {n}\n\nleaf frames by where they run:")
    for b, c in collections.Counter(bucket(s) for s in all_stacks).most_common(14):
        print(f"  {100 * c / n:5.1f}%  {b}")
    print("\ninclusive share of pipeline steps (lower bounds):")
    for name, pat in STEPS:
        rx = re.compile(pat)
        c = sum(1 for s in all_stacks if any(rx.search(f) for f in s))
        print(f"  {100 * c / n:5.1f}%  {name}")
    print("\ntop user-space leaf symbols:")
    leaves = collections.Counter(s[0][:110] for s in all_stacks if bucket(s) != "kernel")
    for sym, c in leaves.most_common(25):
        print(f"  {100 * c / n:5.1f}%  {sym}")


if __name__ == "__main__":
    main()
