//! redb vs an append-only checksummed log, for the feed index's write pattern (see
//! BENCHMARKS.md): `cargo run --release -- DIR` from this directory. Kept out of the
//! neardup crate so that redb is not one of its dependencies.
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::Instant;

const N: usize = 200_000;
const REC: usize = 3000;
const GROUP: usize = 4096;
const SINGLE: usize = 2000;

fn record(i: usize) -> Vec<u8> {
    let mut v = vec![0u8; REC];
    let mut x = i as u64 ^ 0x9E37_79B9_7F4A_7C15;
    for b in v.iter_mut() {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        *b = x as u8;
    }
    v
}

fn pct(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!("median {:.3} ms p99 {:.3} ms", v[v.len() / 2], v[v.len() * 99 / 100])
}

const TABLE: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("a");

fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let recs: Vec<Vec<u8>> = (0..N).map(record).collect();
    // --- log
    let path = format!("{dir}/log");
    let _ = std::fs::remove_file(&path);
    let f = File::options().create(true).read(true).write(true).open(&path).unwrap();
    let t = Instant::now();
    let mut len = 0u64;
    let mut offsets = Vec::new();
    for chunk in recs.chunks(GROUP) {
        let mut buf = Vec::new();
        for r in chunk {
            offsets.push(len + buf.len() as u64);
            buf.extend_from_slice(&(r.len() as u32).to_le_bytes());
            buf.extend_from_slice(&crc32c::crc32c(r).to_le_bytes());
            buf.extend_from_slice(r);
        }
        f.write_all_at(&buf, len).unwrap();
        f.sync_data().unwrap();
        len += buf.len() as u64;
    }
    let s = t.elapsed().as_secs_f64();
    println!("log  bulk: {:.0} records/s, file {:.1} MB", N as f64 / s, len as f64 / 1e6);
    let mut lat = Vec::new();
    for i in 0..SINGLE {
        let t = Instant::now();
        let r = &recs[i];
        let mut buf = Vec::new();
        buf.extend_from_slice(&(r.len() as u32).to_le_bytes());
        buf.extend_from_slice(&crc32c::crc32c(r).to_le_bytes());
        buf.extend_from_slice(r);
        f.write_all_at(&buf, len).unwrap();
        f.sync_data().unwrap();
        len += buf.len() as u64;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("log  one record per commit: {}", pct(lat));
    let t = Instant::now();
    let mut b = vec![0u8; REC + 8];
    for i in 0..100_000 {
        let o = offsets[(i * 7919) % N];
        f.read_exact_at(&mut b, o).unwrap();
    }
    println!("log  random read: {:.2} us", t.elapsed().as_secs_f64() * 1e6 / 1e5);
    // --- redb
    let path = format!("{dir}/redb");
    let _ = std::fs::remove_file(&path);
    let db = redb::Database::create(&path).unwrap();
    let t = Instant::now();
    let mut key = 0u64;
    for chunk in recs.chunks(GROUP) {
        let w = db.begin_write().unwrap();
        {
            let mut tab = w.open_table(TABLE).unwrap();
            for r in chunk {
                tab.insert(key, r.as_slice()).unwrap();
                key += 1;
            }
        }
        w.commit().unwrap();
    }
    let s = t.elapsed().as_secs_f64();
    println!("redb bulk: {:.0} records/s, file {:.1} MB", N as f64 / s, std::fs::metadata(&path).unwrap().len() as f64 / 1e6);
    let mut lat = Vec::new();
    for i in 0..SINGLE {
        let t = Instant::now();
        let w = db.begin_write().unwrap();
        {
            let mut tab = w.open_table(TABLE).unwrap();
            tab.insert(key, recs[i].as_slice()).unwrap();
            key += 1;
        }
        w.commit().unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("redb one record per commit: {}", pct(lat));
    let t = Instant::now();
    let r = db.begin_read().unwrap();
    let tab = r.open_table(TABLE).unwrap();
    let mut sum = 0usize;
    for i in 0..100_000u64 {
        sum += tab.get((i * 7919) % N as u64).unwrap().unwrap().value().len();
    }
    println!("redb random read: {:.2} us ({sum})", t.elapsed().as_secs_f64() * 1e6 / 1e5);
}
