//! roomgate's own HTTP/1.1 exchange, its pure parts: writing a request head, reading a
//! typical response head (nginx's five fields), and decoding a chunked body.
//!
//! `cargo bench --bench h1`

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::{HeaderMap, HeaderValue, Method};
use roomgate::h1::chunked::{Decoder, Step};
use roomgate::h1::head::{encode_request, parse_response};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 21 Nov 2026 12:00:00 GMT\r\n\
Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok";

fn heads(c: &mut Criterion) {
    let mut headers = HeaderMap::new();
    for (k, v) in [
        ("host", "public.acme.test"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
        ),
        ("accept", "text/html,application/xhtml+xml"),
        ("accept-language", "en-US,en;q=0.9"),
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "public.acme.test"),
        ("x-request-id", "0b6a3c52-5f5e-4f5e-9d1e-2f1b8b9c0a11"),
    ] {
        headers.insert(k, HeaderValue::from_static(v));
    }
    let mut out = Vec::with_capacity(1024);
    c.bench_function("h1_encode_request_8_fields", |b| {
        b.iter(|| {
            out.clear();
            encode_request(
                &Method::GET,
                black_box("/api/items?page=2"),
                &headers,
                &mut out,
            );
            black_box(out.len())
        })
    });
    c.bench_function("h1_parse_response_5_fields", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(black_box(RESPONSE));
            black_box(parse_response(&mut buf, false).expect("head").is_some())
        })
    });
}

fn chunked(c: &mut Criterion) {
    let mut wire = Vec::new();
    for _ in 0..16 {
        wire.extend_from_slice(b"1000\r\n");
        wire.extend_from_slice(&[b'x'; 4096]);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    let mut group = c.benchmark_group("h1_chunked");
    group.throughput(Throughput::Bytes(16 * 4096));
    group.bench_function("64KiB_in_4KiB_chunks", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(black_box(&wire[..]));
            let mut d = Decoder::default();
            let mut n = 0;
            loop {
                match d.next(&mut buf).expect("chunked") {
                    Step::Data(data) => n += data.len(),
                    Step::Done => break,
                    Step::More => unreachable!("the whole body is buffered"),
                }
            }
            black_box(n)
        })
    });
    group.finish();
}

criterion_group!(benches, heads, chunked);
criterion_main!(benches);
