//! `neardup serve`: the feed index behind HTTP, for scrapers that push articles from many
//! processes or machines (`watch` reads one standard input).
//!
//! Handler threads read requests, fingerprint their lines and hand the articles to the
//! one thread that owns the index; it adds the articles of whatever has arrived, writes the
//! group to the log, makes it durable and only then hands each request its verdicts. So
//! one writer, group commit, and an answer means the articles are stored, as with `watch`.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use neardup::feed::{Access, Article, FeedIndex};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::args::parse_size;
use crate::feed::{
    Answer, DurabilityArg, LiveArgs, WatchCounts, acknowledge, commit, prepare, terminal,
};

const SERVE_HELP: &str = "\
Endpoints:
  POST /articles   a body of JSON lines, one article each (as 'index add' reads them);
                   the answer, once the articles are stored, is one JSON line per
                   article in order: its verdict, or {\"rejected\":…} with the line and
                   the reason (malformed JSON, missing text, a repeated id, …)
  GET /health      {\"status\":\"ok\",\"articles\":N}

  Status 200 when the body was read (rejected lines are answered line by line), 400
  for a body that is not JSON lines at all (empty), 404 and 405 for other paths and
  methods, 413 for a body over --max-body-bytes, 503 while stopping. SIGINT or SIGTERM
  stops accepting requests, answers the ones already read, syncs the index and exits.

Examples:
  neardup index create news.idx --level story --window 3d
  neardup serve news.idx --listen 0.0.0.0:8080
  curl --data-binary @today.jsonl http://localhost:8080/articles";

#[derive(Debug, Args)]
#[command(after_long_help = SERVE_HELP)]
pub struct ServeArgs {
    /// The index directory (see 'neardup index create').
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: String,
    /// Threads reading requests and fingerprinting their articles (one thread adds them to
    /// the index, in arrival order).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub threads: usize,
    #[command(flatten)]
    pub live: LiveArgs,
    /// Largest request body accepted (e.g. 16MiB); a larger one is refused whole (413).
    #[arg(long, default_value = "64MiB", value_parser = parse_size, value_name = "SIZE", help_heading = "Input")]
    pub max_body_bytes: u64,
    /// No warnings or summary on standard error (the address is still printed).
    #[arg(short, long, help_heading = "Run")]
    pub quiet: bool,
}

/// What a handler thread asks of the index's thread.
enum Job {
    /// The lines of one request body (1-based numbers, blank lines left out), each
    /// fingerprinted by the handler or rejected; answered with one JSON line per article.
    Articles {
        lines: Vec<(u64, Result<Article, Answer>)>,
        read_at: Instant,
        reply: mpsc::Sender<Vec<u8>>,
    },
    /// How many articles the index holds.
    Count { reply: mpsc::Sender<usize> },
}

pub fn serve(a: ServeArgs) -> Result<ExitCode> {
    let fields = a.live.fields()?;
    anyhow::ensure!(a.threads >= 1, "--threads must be at least 1");
    let terminal = terminal(crate::args::ProgressArg::Auto, a.quiet);
    let mut index = FeedIndex::open(&a.dir, Access::Write, &terminal)?;
    let server = Arc::new(
        listen(&a.listen)
            .and_then(|listener| Server::from_listener(listener, None).map_err(io::Error::other))
            .with_context(|| format!("listening on {}", a.listen))?,
    );
    let address: Option<SocketAddr> = server.server_addr().to_ip();
    // Printed even with --quiet: with port 0 it is the only way to learn the port.
    eprintln!(
        "neardup: serve: {} listening on http://{}",
        a.dir.display(),
        address.map_or_else(|| a.listen.clone(), |x| x.to_string())
    );

    let stopping = Arc::new(AtomicBool::new(false));
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .context("installing signal handlers")?;
    {
        let (server, stopping, threads) = (server.clone(), stopping.clone(), a.threads);
        std::thread::spawn(move || {
            for _ in signals.forever() {
                if stopping.swap(true, Ordering::AcqRel) {
                    // The user insists: leave now. Answered articles are durable anyway.
                    std::process::exit(130);
                }
                for _ in 0..threads {
                    server.unblock();
                }
            }
        });
    }
    let (jobs, queue) = mpsc::channel::<Job>();
    let handlers: Vec<_> = (0..a.threads)
        .map(|_| {
            let (server, jobs, stopping) = (server.clone(), jobs.clone(), stopping.clone());
            // Each handler fingerprints its requests' articles: the index's thread only
            // adds them.
            let mut reader = Reader {
                fingerprinter: index.fingerprinter(),
                fields: fields.clone(),
                limit: a.max_body_bytes,
            };
            std::thread::spawn(move || {
                while !stopping.load(Ordering::Acquire) {
                    match server.recv() {
                        Ok(request) => handle(request, &jobs, &mut reader, &stopping),
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    // The handlers hold the only senders: the queue ends when they have all stopped.
    drop(jobs);

    let mut counts = WatchCounts::default();
    let mut unsynced: Option<neardup::feed::Written> = None;
    let mut last_sync = Instant::now();
    let decided = (|| -> Result<()> {
        loop {
            let first = match queue.recv_timeout(Duration::from_millis(100)) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(written) = unsynced.take() {
                        written.sync()?;
                        last_sync = Instant::now();
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            };
            // Whatever has already arrived joins this commit group.
            let mut group = vec![first];
            let mut articles = 0;
            while articles < a.live.max_group {
                match queue.try_recv() {
                    Ok(job) => {
                        if let Job::Articles { lines, .. } = &job {
                            articles += lines.len();
                        }
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
            let mut answered = Vec::with_capacity(group.len());
            for job in group {
                match job {
                    Job::Count { reply } => {
                        let _ = reply.send(index.len());
                    }
                    Job::Articles {
                        lines,
                        read_at,
                        reply,
                    } => {
                        let mut out = Vec::new();
                        let articles = lines.len();
                        for (number, prepared) in lines {
                            let answer = match prepared {
                                Ok(article) => commit(&mut index, article, number)?,
                                Err(rejected) => rejected,
                            };
                            acknowledge(
                                &mut out,
                                &answer,
                                &mut counts,
                                a.live.all_matches,
                                a.quiet,
                                "request",
                            )?;
                        }
                        answered.push((out, read_at, articles, reply));
                    }
                }
            }
            if answered.is_empty() {
                continue;
            }
            // Durable first, then answered.
            let syncer = index.write()?;
            match a.live.durability {
                DurabilityArg::Disk => syncer.sync()?,
                DurabilityArg::Process => {
                    unsynced = Some(syncer.write()?);
                    if last_sync.elapsed() >= Duration::from_millis(100) {
                        if let Some(written) = unsynced.take() {
                            written.sync()?;
                        }
                        last_sync = Instant::now();
                    }
                }
            }
            let now = Instant::now();
            for (out, read_at, articles, reply) in answered {
                let waited = now.duration_since(read_at).as_micros() as u64;
                counts
                    .latencies_us
                    .extend(std::iter::repeat_n(waited, articles));
                let _ = reply.send(out);
            }
        }
    })();
    if decided.is_err() {
        // Stop taking requests; those waiting get a 500 as their senders drop.
        stopping.store(true, Ordering::Release);
        for _ in 0..a.threads {
            server.unblock();
        }
        drop(queue);
    }
    for handler in handlers {
        let _ = handler.join();
    }
    // Whatever the durability, everything is on disk before serve exits.
    if let Some(written) = unsynced.take() {
        written.sync()?;
    }
    decided?;
    if !a.quiet {
        terminal.println(&counts.summary("serve", "", "time to answer", &index));
    }
    Ok(ExitCode::SUCCESS)
}

/// A listening socket on `address` whose connections send at once (TCP_NODELAY, which
/// Linux passes on to accepted sockets): tiny_http writes a response's head and body
/// apart, and with Nagle's algorithm a body would wait for the client's delayed ACK of the
/// head (40 ms for every answer of a few kilobytes).
fn listen(address: &str) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let address = std::net::ToSocketAddrs::to_socket_addrs(address)?
        .next()
        .ok_or_else(|| io::Error::other("the address resolves to nothing"))?;
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// What a handler thread reads requests with.
struct Reader {
    fingerprinter: neardup::pipeline::Fingerprinter,
    fields: neardup::input::FieldNames,
    limit: u64,
}

/// Answers one request (on a handler thread).
fn handle(
    mut request: Request,
    jobs: &mpsc::Sender<Job>,
    reader: &mut Reader,
    stopping: &AtomicBool,
) {
    let route = (
        request.method().clone(),
        request.url().split('?').next().unwrap_or("").to_string(),
    );
    let answer = match (&route.0, route.1.as_str()) {
        _ if stopping.load(Ordering::Acquire) => error(503, "the server is stopping"),
        (Method::Post, "/articles") => articles(&mut request, jobs, reader),
        (Method::Get, "/health") => {
            let (reply, answer) = mpsc::channel();
            match jobs
                .send(Job::Count { reply })
                .ok()
                .and_then(|()| answer.recv().ok())
            {
                Some(n) => json(200, format!("{{\"status\":\"ok\",\"articles\":{n}}}\n")),
                None => error(503, "the server is stopping"),
            }
        }
        (_, "/articles") => error(405, "/articles takes POST"),
        (_, "/health") => error(405, "/health takes GET"),
        (_, path) => error(
            404,
            &format!("no such endpoint: {path} (POST /articles, GET /health)"),
        ),
    };
    // A client that went away is not the server's problem.
    let _ = request.respond(answer);
}

/// `POST /articles`: the body's lines, decided and stored, answered line by line.
fn articles(
    request: &mut Request,
    jobs: &mpsc::Sender<Job>,
    reader: &mut Reader,
) -> Response<io::Cursor<Vec<u8>>> {
    let limit = reader.limit;
    let mut body = Vec::new();
    if let Err(e) = request.as_reader().take(limit + 1).read_to_end(&mut body) {
        return error(400, &format!("reading the body: {e}"));
    }
    if body.len() as u64 > limit {
        return error(
            413,
            &format!("the body exceeds --max-body-bytes ({limit} bytes)"),
        );
    }
    let read_at = Instant::now();
    let mut lines = Vec::new();
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let mut line = line.strip_suffix(b"\r").unwrap_or(line);
        if i == 0 {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            let number = i as u64 + 1;
            lines.push((
                number,
                prepare(&mut reader.fingerprinter, &reader.fields, number, line),
            ));
        }
    }
    if lines.is_empty() {
        return error(
            400,
            "the body holds no article (JSON lines, one article each)",
        );
    }
    let (reply, answer) = mpsc::channel();
    if jobs
        .send(Job::Articles {
            lines,
            read_at,
            reply,
        })
        .is_err()
    {
        return error(503, "the server is stopping");
    }
    match answer.recv() {
        Ok(out) => Response::from_data(out)
            .with_status_code(200)
            .with_header(ndjson()),
        // The index's thread failed (its error is on the server's standard error).
        Err(_) => error(
            500,
            "the index failed; nothing of this request was acknowledged",
        ),
    }
}

fn ndjson() -> Header {
    Header::from_bytes(&b"Content-Type"[..], &b"application/x-ndjson"[..]).expect("valid header")
}

fn json(status: u16, body: String) -> Response<io::Cursor<Vec<u8>>> {
    Response::from_data(body.into_bytes())
        .with_status_code(status)
        .with_header(ndjson())
}

fn error(status: u16, message: &str) -> Response<io::Cursor<Vec<u8>>> {
    json(
        status,
        format!("{}\n", serde_json::json!({ "error": message })),
    )
}
