//! `sota-bot healthz`: asks a running `sota-bot serve` for `/healthz` and exits 0 when it
//! answers `ok`, 1 otherwise. The container image's health check runs it (the image has no
//! shell or HTTP client of its own).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK};

/// Arguments of `sota-bot healthz`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The address `serve` listens on (an unspecified address is asked on loopback).
    #[arg(long, env = "SOTA_BOT_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    pub timeout_secs: u64,
}

/// The URL to ask for a listen address.
pub fn health_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/healthz", SocketAddr::new(ip, listen.port()))
}

/// Runs the command.
pub fn run(a: Args) -> anyhow::Result<i32> {
    let listen: SocketAddr = match a.listen.parse() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: --listen `{}` is not host:port: {e}", a.listen);
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let url = health_url(listen);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(a.timeout_secs))
        .build()?;
    match client
        .get(&url)
        .send()
        .and_then(|r| Ok((r.status(), r.text()?)))
    {
        Ok((status, body)) if status.is_success() && body.trim() == "ok" => {
            println!("{url}: ok");
            Ok(EXIT_OK)
        }
        Ok((status, body)) => {
            eprintln!("{url}: HTTP {status}: {}", body.trim());
            Ok(EXIT_FAILURE)
        }
        Err(e) => {
            eprintln!("{url}: {e}");
            Ok(EXIT_FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_asked_on_loopback() {
        assert_eq!(
            health_url("0.0.0.0:3000".parse().unwrap()),
            "http://127.0.0.1:3000/healthz"
        );
        assert_eq!(
            health_url("[::]:80".parse().unwrap()),
            "http://[::1]:80/healthz"
        );
        assert_eq!(
            health_url("10.1.2.3:9".parse().unwrap()),
            "http://10.1.2.3:9/healthz"
        );
    }
}
