//! Parse + lower a generated 10,000-line Dockerfile.
//!
//! `cargo bench -p strata-frontend --bench parse` prints the median and the
//! fastest of many runs for: parse only, parse + typed instructions, and the
//! whole compile (parse + instructions + lowering to the build graph).
//! Target: the whole compile under 10 ms in release.

// The `strata` binary's allocator, so the figures are what users get.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::{Duration, Instant};

use strata_frontend::graph::Options;

/// A realistic mix: stages, ARG/ENV, RUN with continuations and mounts,
/// COPY --from, heredocs, config instructions.
fn generate(lines: usize) -> String {
    let mut out =
        String::from("# syntax=docker/dockerfile:1\nARG BASE=debian:bookworm\nARG VERSION=1.0\n");
    let mut stage = 0;
    while out.lines().count() < lines {
        out.push_str(&format!("\nFROM $BASE AS stage{stage}\nARG VERSION\nENV APP_HOME=/opt/app{stage} LANG=C.UTF-8\nWORKDIR $APP_HOME\n"));
        for step in 0..20 {
            out.push_str(&format!(
                "RUN --mount=type=cache,target=/var/cache/apt \\\n    apt-get update && \\\n    apt-get install -y --no-install-recommends pkg{step} \\\n    && echo \"${{VERSION}}-{step}\" > /etc/version-{step}\n"
            ));
            out.push_str(&format!(
                "COPY --chown=1000:1000 src/{step}/ ./src/{step}/\n"
            ));
            out.push_str(&format!("LABEL org.example.step{step}=\"value {step}\"\n"));
        }
        if stage > 0 {
            out.push_str(&format!(
                "COPY --from=stage{} /opt/app{}/src /imported\n",
                stage - 1,
                stage - 1
            ));
        }
        out.push_str("COPY <<EOF /etc/motd\nbuilt from $BASE version $VERSION\nEOF\n");
        out.push_str("EXPOSE 8080/tcp\nUSER 1000:1000\nCMD [\"/opt/app/bin/server\", \"--port\", \"8080\"]\n");
        stage += 1;
    }
    out
}

fn measure(name: &str, runs: usize, mut body: impl FnMut()) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            body();
            start.elapsed()
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    let fastest = times[0];
    #[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
    {
        println!(
            "{name:<40} median {:>8.3} ms   fastest {:>8.3} ms   ({runs} runs)",
            median.as_secs_f64() * 1e3,
            fastest.as_secs_f64() * 1e3
        );
    }
}

fn main() {
    let text = generate(10_000);
    let lines = text.lines().count();
    let stages = text.matches("\nFROM ").count();
    #[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
    {
        println!(
            "input: {lines} lines, {} bytes, {stages} stages",
            text.len()
        );
    }
    let runs = 200;
    // `STRATA_BENCH_ONLY=lower` loops on the lowering alone, for profiling.
    if std::env::var("STRATA_BENCH_ONLY").as_deref() == Ok("lower") {
        let file = strata_frontend::parse(&text).unwrap();
        let stages = strata_frontend::instructions::from_dockerfile(&file).unwrap();
        let options = Options::default();
        measure("lower only", runs * 5, || {
            black_box(strata_frontend::graph::lower(black_box(&stages), &options).unwrap());
        });
        return;
    }
    measure("parse", runs, || {
        black_box(strata_frontend::parse(black_box(&text)).unwrap());
    });
    measure("parse + instructions", runs, || {
        let file = strata_frontend::parse(black_box(&text)).unwrap();
        black_box(strata_frontend::instructions::from_dockerfile(&file).unwrap());
    });
    let options = Options::default();
    let file = strata_frontend::parse(&text).unwrap();
    let stages = strata_frontend::instructions::from_dockerfile(&file).unwrap();
    measure("lower only", runs, || {
        black_box(strata_frontend::graph::lower(black_box(&stages), &options).unwrap());
    });
    measure("parse + instructions + lower (compile)", runs, || {
        let compiled = strata_frontend::compile(black_box(&text), &options).unwrap();
        black_box(compiled.graph.len());
    });
    let compiled = strata_frontend::compile(&text, &options).unwrap();
    #[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
    {
        println!("graph: {} vertices", compiled.graph.len());
    }
}
