// SPDX-License-Identifier: MIT
// Rust peer of bench/fanout and bench/threads: JOBS runs of CMD through
// std::process::Command::output() (stdout and stderr captured, stdin
// null), standard library only.
//
//   rust-fanout pool|serial JOBS PAR [--max-seconds S] [--warm N] -- CMD [ARG...]
//
// pool: PAR threads, each taking the next job from one counter, as a
// thread pool would; serial: one at a time in a loop (PAR ignored).
// --max-seconds: start no job after S seconds (the count is the jobs done).
// Prints one JSON line, as the C programs do.  Built by bench/run.py with
// rustc -O (Debian's rustc 1.63 or newer).
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn one(cmd: &[String]) -> usize {
    let out = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            eprintln!("rust-fanout: {}: {}", cmd[0], e);
            std::process::exit(1)
        });
    if !out.status.success() {
        eprintln!("rust-fanout: {} failed: {}", cmd[0], out.status);
        std::process::exit(1);
    }
    out.stdout.len() + out.stderr.len()
}

// (jobs done, bytes)
fn serial(n: usize, deadline: Option<Instant>, cmd: &[String]) -> (usize, usize) {
    let mut bytes = 0;
    for i in 0..n {
        if deadline.map_or(false, |d| Instant::now() > d) {
            return (i, bytes);
        }
        bytes += one(cmd);
    }
    (n, bytes)
}

fn pool(n: usize, par: usize, deadline: Option<Instant>, cmd: &[String]) -> (usize, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let cmd = Arc::new(cmd.to_vec());
    let workers: Vec<_> = (0..par.max(1).min(n.max(1)))
        .map(|_| {
            let (next, cmd) = (Arc::clone(&next), Arc::clone(&cmd));
            thread::spawn(move || {
                let (mut done, mut bytes) = (0, 0);
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    if deadline.map_or(false, |d| Instant::now() > d) {
                        break;
                    }
                    bytes += one(&cmd);
                    done += 1;
                }
                (done, bytes)
            })
        })
        .collect();
    workers
        .into_iter()
        .map(|w| w.join().expect("rust-fanout: a worker panicked"))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

fn usage() -> ! {
    eprintln!("usage: rust-fanout pool|serial JOBS PAR [--max-seconds S] [--warm N] -- CMD [ARG...]");
    std::process::exit(2)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 5 {
        usage();
    }
    let method = a[1].clone();
    let n: usize = a[2].parse().unwrap_or_else(|_| usage());
    let par: usize = a[3].parse().unwrap_or_else(|_| usage());
    let (mut max_s, mut warm, mut i) = (0.0f64, 10usize, 4);
    while i < a.len() && a[i] != "--" {
        match (a[i].as_str(), a.get(i + 1)) {
            ("--max-seconds", Some(v)) => max_s = v.parse().unwrap_or_else(|_| usage()),
            ("--warm", Some(v)) => warm = v.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
        i += 2;
    }
    if i + 1 >= a.len() || n == 0 || (method != "pool" && method != "serial") {
        usage();
    }
    let cmd = &a[i + 1..];
    let run = |n: usize, deadline: Option<Instant>| {
        if method == "pool" {
            pool(n, par, deadline, cmd)
        } else {
            serial(n, deadline, cmd)
        }
    };
    run(warm.min(n), None);
    let t0 = Instant::now();
    let deadline = if max_s > 0.0 { Some(t0 + Duration::from_secs_f64(max_s)) } else { None };
    let (count, bytes) = run(n, deadline);
    let s = t0.elapsed().as_secs_f64();
    println!(
        "{{\"method\":\"rust-{}\",\"seconds\":{:.9},\"count\":{},\"bytes\":{},\"engine\":\"std::process\",\"threads\":{}}}",
        method,
        s,
        count,
        bytes,
        if method == "pool" { par.max(1).min(n) } else { 1 }
    );
}
