//! The echo connection handler of the servers whose sockets implement
//! `futures_io::{AsyncRead, AsyncWrite}` (smol, baton); tokio's twin, on
//! `tokio::io`, is in [`super::server_tokio`]. Same buffer, same loop.

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Reads into a `buffer`-byte buffer and writes back what was read, until
/// the peer closes (`Ok`) or an error.
pub async fn echo_futures_io<S>(mut stream: S, buffer: usize) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; buffer];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}
