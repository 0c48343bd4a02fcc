//! An in-process TCP proxy that injects network faults between the extension side and the
//! server: zombie (half-open) links, resets, latency, refused connections.
//!
//! It owns only byte forwarding and the faults applied to it; it must not parse what it
//! forwards (WebSocket, HTTP) and must not pick ports other than ephemeral ones on
//! 127.0.0.1. Every task it starts is aborted when the [`FaultProxy`] is dropped.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// Which way of a proxied connection a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Both,
    /// Client → upstream (extension → server).
    ToUpstream,
    /// Upstream → client (server → extension).
    ToClient,
}

impl Direction {
    fn covers_to_upstream(self) -> bool {
        matches!(self, Direction::Both | Direction::ToUpstream)
    }

    fn covers_to_client(self) -> bool {
        matches!(self, Direction::Both | Direction::ToClient)
    }
}

/// Per-connection state the control methods reach into while the pumps run.
struct Conn {
    client: Arc<TcpStream>,
    /// Set once the upstream dial succeeded.
    upstream: Mutex<Option<Arc<TcpStream>>>,
    blackhole_to_upstream: AtomicBool,
    blackhole_to_client: AtomicBool,
}

struct Shared {
    upstream: SocketAddr,
    delay_us: AtomicU64,
    refuse_new: AtomicBool,
    accepted: AtomicUsize,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, (Arc<Conn>, AbortHandle)>>,
}

impl Shared {
    fn conns(&self) -> MutexGuard<'_, HashMap<u64, (Arc<Conn>, AbortHandle)>> {
        // A panicking pump cannot leave the map half-updated; keep going rather than cascade.
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_us.load(Ordering::Relaxed))
    }
}

/// A running proxy; dropping it stops the listener and every proxied connection.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: AbortHandle,
}

impl FaultProxy {
    /// Listen on an ephemeral port of 127.0.0.1 and forward every accepted connection to
    /// `upstream`. Must be called inside a Tokio runtime.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the fault proxy on 127.0.0.1:0")?;
        let addr = listener.local_addr().context("reading the proxy address")?;
        let shared = Arc::new(Shared {
            upstream,
            delay_us: AtomicU64::new(0),
            refuse_new: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            conns: Mutex::new(HashMap::new()),
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone())).abort_handle();
        Ok(FaultProxy {
            addr,
            shared,
            accept_task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// TCP connections accepted so far, refused ones included.
    pub fn connections_accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Proxied connections currently alive (zombies included).
    pub fn active_connections(&self) -> usize {
        self.shared.conns().len()
    }

    /// Existing connections keep their sockets open but silently drop everything in
    /// `direction` from now on; connections accepted later are forwarded normally.
    pub fn blackhole_existing(&self, direction: Direction) {
        for (conn, _) in self.shared.conns().values() {
            if direction.covers_to_upstream() {
                conn.blackhole_to_upstream.store(true, Ordering::SeqCst);
            }
            if direction.covers_to_client() {
                conn.blackhole_to_client.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Abort every existing connection with a TCP RST on both sides.
    pub fn reset_existing(&self) {
        let drained: Vec<(Arc<Conn>, AbortHandle)> =
            self.shared.conns().drain().map(|(_, v)| v).collect();
        for (conn, task) in drained {
            reset_conn(&conn);
            task.abort();
        }
    }

    /// Delay every chunk forwarded from now on (both directions, existing and new
    /// connections) by `delay`, keeping order.
    pub fn set_delay(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.shared.delay_us.store(us, Ordering::SeqCst);
    }

    /// While true, accepted connections are reset at once (the closest a listening socket
    /// gets to a dead port).
    pub fn refuse_new(&self, refuse: bool) {
        self.shared.refuse_new.store(refuse, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("accepted", &self.connections_accepted())
            .finish_non_exhaustive()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        for (_, (_, task)) in self.shared.conns().drain() {
            task.abort();
        }
    }
}

/// Zero linger turns the close that follows into an RST instead of a FIN.
fn reset_conn(conn: &Conn) {
    let _ = conn.client.set_zero_linger();
    let upstream = conn.upstream.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(up) = upstream.as_ref() {
        let _ = up.set_zero_linger();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (client, _) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "fault proxy accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let _ = client.set_nodelay(true);
        if shared.refuse_new.load(Ordering::SeqCst) {
            let _ = client.set_zero_linger();
            drop(client);
            continue;
        }
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        let conn = Arc::new(Conn {
            client: Arc::new(client),
            upstream: Mutex::new(None),
            blackhole_to_upstream: AtomicBool::new(false),
            blackhole_to_client: AtomicBool::new(false),
        });
        // Insert under the lock that also covers the spawn, so the task's own removal on exit
        // cannot run before the insertion.
        let mut conns = shared.conns();
        let task = tokio::spawn(run_conn(id, conn.clone(), shared.clone())).abort_handle();
        conns.insert(id, (conn, task));
    }
}

async fn run_conn(id: u64, conn: Arc<Conn>, shared: Arc<Shared>) {
    let outcome = proxy_conn(&conn, &shared).await;
    if let Err(e) = outcome {
        tracing::debug!(conn = id, error = %e, "fault proxy connection failed; resetting");
        reset_conn(&conn);
    }
    shared.conns().remove(&id);
}

async fn proxy_conn(conn: &Conn, shared: &Arc<Shared>) -> io::Result<()> {
    let upstream = Arc::new(TcpStream::connect(shared.upstream).await?);
    let _ = upstream.set_nodelay(true);
    *conn.upstream.lock().unwrap_or_else(|p| p.into_inner()) = Some(upstream.clone());
    let to_upstream = pump(
        conn.client.clone(),
        upstream.clone(),
        &conn.blackhole_to_upstream,
        shared,
    );
    let to_client = pump(
        upstream,
        conn.client.clone(),
        &conn.blackhole_to_client,
        shared,
    );
    futures_util::future::try_join(to_upstream, to_client).await?;
    Ok(())
}

enum Chunk {
    Data(tokio::time::Instant, Vec<u8>),
    Eof,
}

/// Forward one direction. Reading and writing run concurrently through a queue so that the
/// delay is a constant latency per chunk, not a throughput limit that piles up.
async fn pump(
    from: Arc<TcpStream>,
    to: Arc<TcpStream>,
    blackhole: &AtomicBool,
    shared: &Shared,
) -> io::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Chunk>();
    let reader = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = read_some(&from, &mut buf).await?;
            if n == 0 {
                if blackhole.load(Ordering::SeqCst) {
                    // A dead path carries no FIN either: the other side stays half-open.
                    std::future::pending::<()>().await;
                }
                let _ = tx.send(Chunk::Eof);
                return Ok::<(), io::Error>(());
            }
            if blackhole.load(Ordering::SeqCst) {
                continue;
            }
            let due = tokio::time::Instant::now() + shared.delay();
            if tx.send(Chunk::Data(due, buf[..n].to_vec())).is_err() {
                return Ok(());
            }
        }
    };
    let writer = async {
        while let Some(chunk) = rx.recv().await {
            match chunk {
                Chunk::Data(due, bytes) => {
                    tokio::time::sleep_until(due).await;
                    if blackhole.load(Ordering::SeqCst) {
                        continue;
                    }
                    write_all(&to, &bytes).await?;
                }
                Chunk::Eof => {
                    if blackhole.load(Ordering::SeqCst) {
                        std::future::pending::<()>().await;
                    }
                    socket2::SockRef::from(&*to).shutdown(Shutdown::Write)?;
                    return Ok::<(), io::Error>(());
                }
            }
        }
        Ok(())
    };
    futures_util::future::try_join(reader, writer).await?;
    Ok(())
}

async fn read_some(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        stream.readable().await?;
        match stream.try_read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Echo server on 127.0.0.1:0; its task ends with the test's runtime.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
        s.write_all(msg).await.unwrap();
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got))
            .await
            .expect("echo timed out")
            .unwrap();
        got
    }

    #[tokio::test]
    async fn forwards_both_ways_and_counts_connections() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut b = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut a, b"hello").await, b"hello");
        assert_eq!(round_trip(&mut b, b"world").await, b"world");
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(round_trip(&mut a, &big).await, big);
        assert_eq!(proxy.connections_accepted(), 2);
        assert_eq!(proxy.active_connections(), 2);
    }

    #[tokio::test]
    async fn blackhole_keeps_the_old_socket_open_but_silent_while_new_ones_work() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut old, b"before").await, b"before");
        proxy.blackhole_existing(Direction::Both);

        old.write_all(b"lost").await.unwrap();
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_millis(300), old.read(&mut buf)).await;
        assert!(
            read.is_err(),
            "a zombie link must neither answer nor close: {read:?}"
        );

        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut fresh, b"after").await, b"after");
        // Still a zombie, not closed, after the fresh connection.
        let read = tokio::time::timeout(Duration::from_millis(100), old.read(&mut buf)).await;
        assert!(read.is_err(), "{read:?}");
        assert_eq!(proxy.active_connections(), 2);
    }

    #[tokio::test]
    async fn blackhole_one_direction_only() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut s, b"x").await, b"x");
        proxy.blackhole_existing(Direction::ToClient);
        s.write_all(b"y").await.unwrap();
        let mut buf = [0u8; 4];
        let read = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await;
        assert!(read.is_err(), "{read:?}");
    }

    #[tokio::test]
    async fn reset_aborts_existing_connections_quickly() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut s, b"ping").await, b"ping");
        let started = Instant::now();
        proxy.reset_existing();
        let mut buf = [0u8; 4];
        let read = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .expect("reset must end the connection promptly");
        // An RST, not an orderly FIN: the peer must see a reset.
        match read {
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
            Ok(n) => panic!("expected a connection reset, read returned Ok({n})"),
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(proxy.active_connections(), 0);
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut fresh, b"again").await, b"again");
    }

    #[tokio::test]
    async fn delay_adds_latency_in_order() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut s, b"warm").await, b"warm");
        proxy.set_delay(Duration::from_millis(150));
        let started = Instant::now();
        assert_eq!(round_trip(&mut s, b"slow").await, b"slow");
        // Both directions are delayed: at least two delays for a round trip.
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );

        // Latency stays constant under a stream of chunks instead of accumulating.
        let started = Instant::now();
        for i in 0..5u8 {
            s.write_all(&[i]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut got = [0u8; 5];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, [0, 1, 2, 3, 4]);
        // Serialised per-chunk sleeps would need ≥ 900 ms here; pipelined ones about 400 ms.
        assert!(
            started.elapsed() < Duration::from_millis(750),
            "{:?}",
            started.elapsed()
        );

        proxy.set_delay(Duration::ZERO);
        let started = Instant::now();
        assert_eq!(round_trip(&mut s, b"fast").await, b"fast");
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn refuse_new_resets_fresh_connections() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        proxy.refuse_new(true);
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let _ = s.write_all(b"x").await;
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .expect("a refused connection must end promptly");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert_eq!(proxy.connections_accepted(), 1);
        proxy.refuse_new(false);
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut s, b"ok").await, b"ok");
    }

    #[tokio::test]
    async fn eof_propagates_as_half_close() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut s, b"bye").await, b"bye");
        s.shutdown().await.unwrap();
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read, 0);
        crate::eventually(
            Duration::from_secs(2),
            Duration::from_millis(10),
            || async { (proxy.active_connections() == 0).then_some(()) },
        )
        .await
        .unwrap();
    }
}
