//! Markdown tables for BENCHMARKS.md.

use std::fmt::Write;

use super::measure::Stats;

/// One workload: its systems' figures, the first one being baton (the
/// reference every ratio is taken against).
#[derive(Clone, Debug)]
pub struct Workload {
    /// The workload's name.
    pub name: String,
    /// `stats[0]` is baton's.
    pub stats: Vec<Stats>,
}

/// A group of workloads: one table in BENCHMARKS.md.
#[derive(Clone, Debug, Default)]
pub struct Group {
    /// `--only` name.
    pub id: String,
    /// Section title.
    pub title: String,
    /// Text under the title.
    pub intro: String,
    /// The workloads, in order.
    pub workloads: Vec<Workload>,
    /// Extra markdown after the tables (plots, notes).
    pub extra: String,
}

/// `ns` as a short human figure.
pub fn fmt_ns(ns: f64) -> String {
    if !ns.is_finite() {
        "—".into()
    } else if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// baton's median ÷ `peer`'s median.
pub fn ratio(baton: &Stats, peer: &Stats) -> f64 {
    baton.median / peer.median
}

/// The headline table of a group: baton's median and its ratio to each peer.
pub fn headline(g: &Group) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| workload | baton median | baton ÷ peer (median ÷ median; < 1: baton faster) |"
    );
    let _ = writeln!(s, "|---|---:|---|");
    for w in &g.workloads {
        let b = &w.stats[0];
        let peers: Vec<String> = w.stats[1..]
            .iter()
            .map(|p| format!("{} **{:.2}×**", p.system, ratio(b, p)))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            w.name,
            fmt_ns(b.median),
            if peers.is_empty() {
                "—".into()
            } else {
                peers.join(", ")
            }
        );
    }
    s
}

/// The full table of a group: every system's median, min–max, rounds and
/// the ratio of baton's median to it.
pub fn full(g: &Group) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| workload | system | median / iter | min – max | rounds × iters | baton ÷ this |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|");
    for w in &g.workloads {
        let b = &w.stats[0];
        for (i, st) in w.stats.iter().enumerate() {
            let r = if i == 0 {
                "(ref)".to_string()
            } else {
                format!("{:.2}×", ratio(b, st))
            };
            let iters = if st.iters == 0 {
                format!("{} (external)", st.rounds)
            } else {
                format!("{} × {}", st.rounds, st.iters)
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} – {} | {} | {} |",
                if i == 0 { w.name.as_str() } else { "" },
                st.system,
                fmt_ns(st.median),
                fmt_ns(st.min),
                fmt_ns(st.max),
                iters,
                r
            );
        }
    }
    s
}
