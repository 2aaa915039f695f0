//! CIDR ranges for IPv4 and IPv6, matched by prefix.

use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    /// IPv4 addresses are kept as IPv4-mapped IPv6 so that one comparison serves both;
    /// `v4` stops a v4 range from matching a native v6 address and the other way round.
    net: u128,
    prefix: u8,
    v4: bool,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `::1/128`, or a bare address (a single host).
    pub(crate) fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let ip: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{addr}` is not an IPv4 or IPv6 address"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("prefix length `/{p}` must be between 0 and {max}")),
            },
        };
        let (bits, v4) = to_bits(ip);
        let width = if v4 { prefix + 96 } else { prefix };
        let mask = mask(width);
        if bits & !mask != 0 {
            return Err(format!("`{s}` has host bits set past the /{prefix} prefix"));
        }
        Ok(Cidr {
            net: bits,
            prefix,
            v4,
        })
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let (bits, v4) = to_bits(ip);
        if v4 != self.v4 {
            return false;
        }
        let width = if v4 { self.prefix + 96 } else { self.prefix };
        bits & mask(width) == self.net
    }

    pub(crate) fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The first and last address of the range in its own family's space (IPv4 as a 32-bit
    /// number), and whether it is IPv4.
    pub(crate) fn bounds(&self) -> (u128, u128, bool) {
        let (first, width, bits) = if self.v4 {
            (self.net & 0xffff_ffff, self.prefix, 32)
        } else {
            (self.net, self.prefix, 128)
        };
        let host = if u32::from(width) >= bits {
            0
        } else {
            (u128::MAX >> (128 - bits)) >> width
        };
        (first, first | host, self.v4)
    }
}

fn to_bits(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(a) => (u128::from(a.to_ipv6_mapped()), true),
        // An IPv4-mapped v6 peer (::ffff:10.0.0.1 from a dual-stack socket) is the v4 host.
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => (u128::from(v4.to_ipv6_mapped()), true),
            None => (u128::from(a), false),
        },
    }
}

fn mask(width: u8) -> u128 {
    if width == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(width.min(128)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_prefixes() {
        assert!(c("10.0.0.0/8").contains(ip("10.1.2.3")));
        assert!(!c("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(c("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(!c("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(c("192.168.1.7").contains(ip("192.168.1.7")));
        assert!(!c("192.168.1.7").contains(ip("192.168.1.8")));
        assert!(c("10.0.0.0/8").contains(ip("::ffff:10.0.0.1")));
    }

    #[test]
    fn v6_prefixes() {
        assert!(c("2001:db8::/32").contains(ip("2001:db8:1::1")));
        assert!(!c("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(c("::/0").contains(ip("::1")));
        assert!(!c("::/0").contains(ip("1.2.3.4")));
    }

    #[test]
    fn bounds_in_each_family() {
        assert_eq!(c("10.0.0.0/8").bounds(), (0x0a00_0000, 0x0aff_ffff, true));
        assert_eq!(c("0.0.0.0/0").bounds(), (0, 0xffff_ffff, true));
        assert_eq!(c("1.2.3.4").bounds(), (0x0102_0304, 0x0102_0304, true));
        assert_eq!(c("::/0").bounds(), (0, u128::MAX, false));
        let (lo, hi, v4) = c("2001:db8::/32").bounds();
        assert_eq!(lo, 0x2001_0db8u128 << 96);
        assert_eq!(hi, (0x2001_0db8u128 << 96) | (u128::MAX >> 32));
        assert!(!v4);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("10.0.0.1/8").is_err());
        assert!(Cidr::parse("10.0.0/8").is_err());
        assert!(Cidr::parse("::/129").is_err());
        assert!(Cidr::parse("").is_err());
    }
}
