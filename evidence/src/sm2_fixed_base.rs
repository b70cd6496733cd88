//! [k]G on SM2's curve, the one scalar multiplication a receipt's signature needs.
//!
//! The `sm2` crate multiplies with generic Montgomery field arithmetic and a table of projective
//! points that halves its size by doubling four times per signature; it made up about two thirds
//! of every receipt's signature (decision 192). This module does the same multiplication with
//! field arithmetic specialised to SM2's prime p = 2²⁵⁶ − 2²²⁴ − 2⁹⁶ + 2⁶⁴ − 1 (its Montgomery
//! reduction needs no multiplication, since −p⁻¹ ≡ 1 mod 2⁶⁴ and p + 1 has four one-bits) and a
//! table of affine multiples j·16ⁱ·G (65 windows × 8 points, 33 KiB, built once), so that a
//! multiplication is 65 complete mixed additions and one inversion.
//!
//! **Constant time**, since k is the signature's nonce: the scalar is recoded into signed digits
//! without branches, every table entry of a window is read and masked in, a zero digit's addition
//! is computed and discarded by a mask, and the additions are the complete formulas of
//! Renes–Costello–Batina (2015, algorithm 5), which have no exceptional case to branch on.
//!
//! Tested against the `sm2` crate: the same x-coordinate for edge and random scalars, and so the
//! same signatures byte for byte (`keys.rs`).

use sm2::elliptic_curve::sec1::{Coordinates, ToSec1Point};
use sm2::elliptic_curve::Group;
use sm2::{AffinePoint, ProjectivePoint};
use std::sync::LazyLock;

/// p, little-endian 64-bit limbs.
const P: [u64; 4] = [0xffff_ffff_ffff_ffff, 0xffff_ffff_0000_0000, 0xffff_ffff_ffff_ffff, 0xffff_fffe_ffff_ffff];
/// R² mod p with R = 2²⁵⁶: multiplying by it enters the Montgomery domain.
const R2: [u64; 4] = [0x0000_0002_0000_0003, 0x0000_0002_ffff_ffff, 0x0000_0001_0000_0001, 0x0000_0004_0000_0002];
/// The curve coefficients a (= p − 3) and b, big endian (GM/T 0003.5): b for the additions, both
/// for Z_A (`keys.rs`; the `sm2` crate keeps them in a type it does not export). A mistyped byte
/// changes every signature, which the tests compare with the `sm2` crate's.
pub(crate) const EQUATION_A: [u8; 32] = [
    0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc,
];
/// See [`EQUATION_A`].
pub(crate) const EQUATION_B: [u8; 32] = [
    0x28, 0xe9, 0xfa, 0x9e, 0x9d, 0x9f, 0x5e, 0x34, 0x4d, 0x5a, 0x9e, 0x4b, 0xcf, 0x65, 0x09, 0xa7, 0xf3, 0x97, 0x89,
    0xf5, 0x15, 0xab, 0x8f, 0x92, 0xdd, 0xbc, 0xbd, 0x41, 0x4d, 0x94, 0x0e, 0x93,
];

#[inline(always)]
fn adc(a: u64, b: u64, carry: u64) -> (u64, u64) {
    let t = u128::from(a) + u128::from(b) + u128::from(carry);
    (t as u64, (t >> 64) as u64)
}

/// a − b − borrow, and the borrow out (0 or 1).
#[inline(always)]
fn sbb(a: u64, b: u64, borrow: u64) -> (u64, u64) {
    let t = u128::from(a).wrapping_sub(u128::from(b) + u128::from(borrow));
    (t as u64, ((t >> 64) as u64) & 1)
}

/// a + b·c + carry, which never overflows 128 bits.
#[inline(always)]
fn mac(a: u64, b: u64, c: u64, carry: u64) -> (u64, u64) {
    let t = u128::from(a) + u128::from(b) * u128::from(c) + u128::from(carry);
    (t as u64, (t >> 64) as u64)
}

/// `if mask == all ones { b } else { a }`, limb by limb.
#[inline(always)]
fn select(a: &[u64; 4], b: &[u64; 4], mask: u64) -> [u64; 4] {
    [
        a[0] ^ ((a[0] ^ b[0]) & mask),
        a[1] ^ ((a[1] ^ b[1]) & mask),
        a[2] ^ ((a[2] ^ b[2]) & mask),
        a[3] ^ ((a[3] ^ b[3]) & mask),
    ]
}

/// An element of GF(p) in the Montgomery domain (a·R mod p), fully reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fe([u64; 4]);

impl Fe {
    const ZERO: Fe = Fe([0; 4]);
    /// R mod p = 2²²⁴ + 2⁹⁶ − 2⁶⁴ + 1: one in the Montgomery domain.
    const ONE: Fe = Fe([1, 0x0000_0000_ffff_ffff, 0, 0x0000_0001_0000_0000]);

    /// (carry‖value) − p when that does not borrow, else the value: a sum or product below 2p
    /// brought below p.
    #[inline(always)]
    fn reduce_once(value: [u64; 4], carry: u64) -> Fe {
        let (r0, b) = sbb(value[0], P[0], 0);
        let (r1, b) = sbb(value[1], P[1], b);
        let (r2, b) = sbb(value[2], P[2], b);
        let (r3, b) = sbb(value[3], P[3], b);
        let (_, b) = sbb(carry, 0, b);
        Fe(select(&[r0, r1, r2, r3], &value, 0u64.wrapping_sub(b)))
    }

    #[inline(always)]
    fn add(&self, other: &Fe) -> Fe {
        let (a, b) = (&self.0, &other.0);
        let (s0, c) = adc(a[0], b[0], 0);
        let (s1, c) = adc(a[1], b[1], c);
        let (s2, c) = adc(a[2], b[2], c);
        let (s3, c) = adc(a[3], b[3], c);
        Fe::reduce_once([s0, s1, s2, s3], c)
    }

    #[inline(always)]
    fn sub(&self, other: &Fe) -> Fe {
        let (a, b) = (&self.0, &other.0);
        let (d0, w) = sbb(a[0], b[0], 0);
        let (d1, w) = sbb(a[1], b[1], w);
        let (d2, w) = sbb(a[2], b[2], w);
        let (d3, w) = sbb(a[3], b[3], w);
        // Add p back when it borrowed.
        let mask = 0u64.wrapping_sub(w);
        let (r0, c) = adc(d0, P[0] & mask, 0);
        let (r1, c) = adc(d1, P[1] & mask, c);
        let (r2, c) = adc(d2, P[2] & mask, c);
        let (r3, _) = adc(d3, P[3] & mask, c);
        Fe([r0, r1, r2, r3])
    }

    #[inline(always)]
    fn double(&self) -> Fe {
        self.add(self)
    }

    #[inline(always)]
    fn neg(&self) -> Fe {
        Fe::ZERO.sub(self)
    }

    /// a·b·R⁻¹ mod p: the schoolbook product, then its Montgomery reduction.
    #[inline(always)]
    fn mul(&self, other: &Fe) -> Fe {
        let (a, b) = (&self.0, &other.0);
        let mut t = [0u64; 8];
        for i in 0..4 {
            let mut carry = 0;
            for j in 0..4 {
                let (v, c) = mac(t[i + j], a[i], b[j], carry);
                t[i + j] = v;
                carry = c;
            }
            t[i + 4] = carry;
        }
        Fe::montgomery_reduce(&t)
    }

    /// a²·R⁻¹ mod p: each cross product once, doubled, plus the squares of the limbs.
    #[inline(always)]
    fn square(&self) -> Fe {
        let a = &self.0;
        let mut t = [0u64; 8];
        // Cross products a[i]·a[j], i < j, into t[1..7].
        for i in 0..3 {
            let mut carry = 0;
            for j in (i + 1)..4 {
                let (v, c) = mac(t[i + j], a[i], a[j], carry);
                t[i + j] = v;
                carry = c;
            }
            t[i + 4] = carry;
        }
        // Doubled: shift the whole left by one bit.
        t[7] = t[6] >> 63;
        for k in (1..7).rev() {
            t[k] = (t[k] << 1) | (t[k - 1] >> 63);
        }
        // Plus a[i]² at limbs 2i, 2i + 1.
        let mut carry = 0;
        for i in 0..4 {
            let sq = u128::from(a[i]) * u128::from(a[i]);
            let (v, c) = adc(t[2 * i], sq as u64, carry);
            t[2 * i] = v;
            let (v, c) = adc(t[2 * i + 1], (sq >> 64) as u64, c);
            t[2 * i + 1] = v;
            carry = c;
        }
        Fe::montgomery_reduce(&t)
    }

    /// t·R⁻¹ mod p for t < p². Four word-wise Montgomery steps on the low half: with m the
    /// lowest word, −p⁻¹ ≡ 1 (mod 2⁶⁴) and m·p = m·(p + 1) − m, so adding m·p clears that word
    /// and adds m·(p + 1)/2⁶⁴ = m·(2¹⁹² − 2¹⁶⁰ − 2³² + 1) one word up: shifts and subtractions,
    /// no multiplication, and (below 2²⁵⁶ − 2²²⁴ with the shifted words below 2¹⁹²) no carry out.
    /// The high half is added last; the sum is below 2p.
    #[inline(always)]
    fn montgomery_reduce(t: &[u64; 8]) -> Fe {
        let mut a = [t[0], t[1], t[2], t[3]];
        for _ in 0..4 {
            let m = a[0];
            let (lo, hi) = (m << 32, m >> 32);
            // u = [m, 0, 0, m] − [lo, hi, lo, hi] = m·(2¹⁹² − 2¹⁶⁰ − 2³² + 1) ≥ 0.
            let (u0, w) = sbb(m, lo, 0);
            let (u1, w) = sbb(0, hi, w);
            let (u2, w) = sbb(0, lo, w);
            let (u3, _) = sbb(m, hi, w);
            let (a0, c) = adc(a[1], u0, 0);
            let (a1, c) = adc(a[2], u1, c);
            let (a2, c) = adc(a[3], u2, c);
            let (a3, _) = adc(0, u3, c);
            a = [a0, a1, a2, a3];
        }
        let (r0, c) = adc(a[0], t[4], 0);
        let (r1, c) = adc(a[1], t[5], c);
        let (r2, c) = adc(a[2], t[6], c);
        let (r3, c) = adc(a[3], t[7], c);
        Fe::reduce_once([r0, r1, r2, r3], c)
    }

    fn square_n(&self, n: usize) -> Fe {
        let mut x = *self;
        for _ in 0..n {
            x = x.square();
        }
        x
    }

    /// self^(p − 2) = self⁻¹ (0 for 0), by a fixed addition chain: p − 2 is, from the top,
    /// 31 ones, a zero, 128 ones, 32 zeros, 62 ones, a zero and a one.
    fn invert(&self) -> Fe {
        let x1 = *self;
        let x2 = x1.square().mul(&x1);
        let x3 = x2.square().mul(&x1);
        let x6 = x3.square_n(3).mul(&x3);
        let x12 = x6.square_n(6).mul(&x6);
        let x15 = x12.square_n(3).mul(&x3);
        let x30 = x15.square_n(15).mul(&x15);
        let x31 = x30.square().mul(&x1);
        let x32 = x31.square().mul(&x1);
        let mut t = x31.square();
        for _ in 0..4 {
            t = t.square_n(32).mul(&x32);
        }
        t = t.square_n(32);
        t = t.square_n(32).mul(&x32);
        t = t.square_n(30).mul(&x30);
        t.square_n(2).mul(&x1)
    }

    /// A big-endian integer below p, into the Montgomery domain; None at or above p.
    fn from_be_bytes(bytes: &[u8; 32]) -> Option<Fe> {
        let mut limbs = [0u64; 4];
        for (i, limb) in limbs.iter_mut().enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[32 - 8 * (i + 1)..32 - 8 * i]);
            *limb = u64::from_be_bytes(word);
        }
        let (_, mut w) = sbb(limbs[0], P[0], 0);
        for i in 1..4 {
            w = sbb(limbs[i], P[i], w).1;
        }
        (w == 1).then(|| Fe(limbs).mul(&Fe(R2)))
    }

    /// Out of the Montgomery domain, big endian.
    fn to_be_bytes(self) -> [u8; 32] {
        let plain = self.mul(&Fe([1, 0, 0, 0]));
        let mut bytes = [0u8; 32];
        for (i, limb) in plain.0.iter().enumerate() {
            bytes[32 - 8 * (i + 1)..32 - 8 * i].copy_from_slice(&limb.to_be_bytes());
        }
        bytes
    }
}

/// A point in projective coordinates (X : Y : Z), x = X/Z, y = Y/Z; the identity is (0 : 1 : 0).
#[derive(Clone, Copy, Debug)]
struct Projective {
    x: Fe,
    y: Fe,
    z: Fe,
}

/// A point in affine coordinates, never the identity.
#[derive(Clone, Copy, Debug, Default)]
struct Affine {
    x: [u64; 4],
    y: [u64; 4],
}

impl Projective {
    const IDENTITY: Projective = Projective { x: Fe::ZERO, y: Fe::ONE, z: Fe::ZERO };

    /// self + q for an affine q that is not the identity, complete for a = −3 (Renes, Costello,
    /// Batina 2015, algorithm 5; the step numbers are the paper's), as the `primeorder` crate
    /// writes it.
    #[inline(always)]
    fn add_mixed(&self, q: &Affine, b: &Fe) -> Projective {
        let (qx, qy) = (Fe(q.x), Fe(q.y));
        let xx = self.x.mul(&qx); // 1
        let yy = self.y.mul(&qy); // 2
        let xy_pairs = self.x.add(&self.y).mul(&qx.add(&qy)).sub(&xx.add(&yy)); // 3–7
        let yz_pairs = qy.mul(&self.z).add(&self.y); // 8, 9
        let xz_pairs = qx.mul(&self.z).add(&self.x); // 10, 11
        let bz_part = xz_pairs.sub(&b.mul(&self.z)); // 12, 13
        let bz3_part = bz_part.double().add(&bz_part); // 14, 15
        let yy_m_bzz3 = yy.sub(&bz3_part); // 16
        let yy_p_bzz3 = yy.add(&bz3_part); // 17
        let z3 = self.z.double().add(&self.z); // 19, 20
        let bxz_part = b.mul(&xz_pairs).sub(&z3.add(&xx)); // 18, 21, 22
        let bxz3_part = bxz_part.double().add(&bxz_part); // 23, 24
        let xx3_m_zz3 = xx.double().add(&xx).sub(&z3); // 25–27
        Projective {
            x: yy_p_bzz3.mul(&xy_pairs).sub(&yz_pairs.mul(&bxz3_part)), // 28, 32, 33
            y: yy_p_bzz3.mul(&yy_m_bzz3).add(&xx3_m_zz3.mul(&bxz3_part)), // 29–31
            z: yy_m_bzz3.mul(&yz_pairs).add(&xy_pairs.mul(&xx3_m_zz3)), // 34–36
        }
    }
}

/// Windows of the table: 64 radix-16 digits of a scalar below 2²⁵⁶ and the carry out of the last.
const WINDOWS: usize = 65;

/// `TABLE.points[i][j − 1]` = j·16ⁱ·G for j = 1..8, and b in the Montgomery domain.
struct GeneratorTable {
    points: Vec<[Affine; 8]>,
    b: Fe,
}

/// An affine point of the `sm2` crate in this module's representation.
fn affine_of(point: &AffinePoint) -> Option<Affine> {
    match point.to_sec1_point(false).coordinates() {
        Coordinates::Uncompressed { x, y } => {
            let x = Fe::from_be_bytes(&<[u8; 32]>::try_from(x.as_slice()).ok()?)?;
            let y = Fe::from_be_bytes(&<[u8; 32]>::try_from(y.as_slice()).ok()?)?;
            Some(Affine { x: x.0, y: y.0 })
        }
        _ => None,
    }
}

/// Built with the `sm2` crate's own arithmetic (about 5 ms, once per process), so an error in
/// this module's formulas cannot also be in its table.
static TABLE: LazyLock<GeneratorTable> = LazyLock::new(|| {
    let mut points = Vec::with_capacity(WINDOWS);
    let mut base = ProjectivePoint::GENERATOR;
    for _ in 0..WINDOWS {
        let mut window = [Affine::default(); 8];
        let mut multiple = base;
        for entry in window.iter_mut() {
            // No j·16ⁱ·G with j ≤ 8 is the identity (n is an odd prime above 8, so it divides no
            // j·16ⁱ): every entry has affine coordinates below p.
            *entry = affine_of(&multiple.to_affine()).unwrap_or_default();
            multiple += base;
        }
        points.push(window);
        for _ in 0..4 {
            base = base.double();
        }
    }
    let b = Fe::from_be_bytes(&EQUATION_B).unwrap_or(Fe::ZERO);
    GeneratorTable { points, b }
});

/// Builds the table now, so the first signature does not pay for it.
pub(crate) fn prepare() {
    LazyLock::force(&TABLE);
}

/// The x-coordinate of [k]G, big endian, for a scalar k (big endian, below n); `None` when
/// [k]G is the identity (k = 0).
pub(crate) fn generator_multiple_x(k: &[u8; 32]) -> Option<[u8; 32]> {
    let table = &*TABLE;
    let mut acc = Projective::IDENTITY;
    let mut carry: i32 = 0;
    for (i, window) in table.points.iter().enumerate() {
        // Signed radix-16 digit i ∈ [−8, 7] (the last, the carry, ∈ {0, 1}), branch-free.
        let digit = if i < 64 {
            let byte = k[31 - i / 2];
            let nibble = i32::from((byte >> (4 * (i % 2))) & 0x0f);
            let v = nibble + carry;
            carry = (v + 8) >> 4;
            v - 16 * carry
        } else {
            carry
        };
        let sign = digit >> 31; // −1 when negative, else 0
        let magnitude = ((digit ^ sign) - sign) as u64; // |digit| ∈ [0, 8]
        let mut entry = Affine::default();
        for (j, candidate) in window.iter().enumerate() {
            // All ones when j + 1 == magnitude, without a comparison branch.
            let diff = (j as u64 + 1) ^ magnitude;
            let mask = (diff | diff.wrapping_neg()) >> 63;
            let mask = mask.wrapping_sub(1);
            entry.x = select(&entry.x, &candidate.x, mask);
            entry.y = select(&entry.y, &candidate.y, mask);
        }
        let negate = u64::from(sign as u32 & 1).wrapping_neg();
        entry.y = select(&entry.y, &Fe(entry.y).neg().0, negate);
        let sum = acc.add_mixed(&entry, &table.b);
        // A zero digit adds nothing: the sum (of a point that is not on the curve) is discarded.
        let nonzero = {
            let m = magnitude;
            ((m | m.wrapping_neg()) >> 63).wrapping_neg()
        };
        acc = Projective {
            x: Fe(select(&acc.x.0, &sum.x.0, nonzero)),
            y: Fe(select(&acc.y.0, &sum.y.0, nonzero)),
            z: Fe(select(&acc.z.0, &sum.z.0, nonzero)),
        };
    }
    if acc.z == Fe::ZERO {
        return None;
    }
    Some(acc.x.mul(&acc.z.invert()).to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sm2::elliptic_curve::point::AffineCoordinates;
    use sm2::elliptic_curve::PrimeField;
    use sm2::Scalar;

    fn x_by_the_sm2_crate(k: &Scalar) -> [u8; 32] {
        let mut x = [0u8; 32];
        x.copy_from_slice(&ProjectivePoint::mul_by_generator(k).to_affine().x());
        x
    }

    fn scalar_from_hex(hex: &str) -> Scalar {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex, &mut bytes).expect("test scalar");
        Option::from(Scalar::from_repr(bytes.into())).expect("below n")
    }

    #[test]
    fn the_montgomery_constants_are_right() {
        // R mod p by doubling 1 256 times; R² mod p by doubling R 256 more times.
        let mut r = Fe([1, 0, 0, 0]);
        for _ in 0..256 {
            r = r.add(&r);
        }
        assert_eq!(r, Fe::ONE);
        let mut r2 = r;
        for _ in 0..256 {
            r2 = r2.add(&r2);
        }
        assert_eq!(r2, Fe(R2));
    }

    #[test]
    fn field_arithmetic_agrees_with_itself_and_the_curve() {
        let table = &*TABLE;
        // G is on y² = x³ − 3x + b, and every table entry is too.
        for window in &table.points {
            for point in window {
                let (x, y) = (Fe(point.x), Fe(point.y));
                let rhs = x.square().mul(&x).sub(&x.double().add(&x)).add(&table.b);
                assert_eq!(y.square(), rhs);
            }
        }
        // Inversion, subtraction, negation and the byte round trip.
        let g = Fe(table.points[0][0].x);
        assert_eq!(g.mul(&g.invert()), Fe::ONE);
        assert_eq!(Fe::ZERO.invert(), Fe::ZERO);
        // a = −3.
        let a = Fe::from_be_bytes(&EQUATION_A).expect("a is below p");
        assert_eq!(a.add(&Fe::ONE.add(&Fe::ONE).add(&Fe::ONE)), Fe::ZERO);
        assert_eq!(g.sub(&g), Fe::ZERO);
        assert_eq!(g.add(&g.neg()), Fe::ZERO);
        let p_minus_1 = Fe::from_be_bytes(&{
            let mut b = [0xff; 32];
            b[3] = 0xfe;
            b[20..24].fill(0);
            b[31] = 0xfe;
            b
        })
        .expect("p − 1 is below p");
        assert_eq!(p_minus_1.add(&Fe::ONE), Fe::ZERO);
        assert_eq!(p_minus_1.mul(&p_minus_1), Fe::ONE);
        // Squaring is multiplying by itself, over values spread through the field and at its top.
        let mut x = g;
        for _ in 0..1000 {
            assert_eq!(x.square(), x.mul(&x));
            x = x.mul(&g).add(&Fe::ONE);
        }
        assert_eq!(p_minus_1.square(), p_minus_1.mul(&p_minus_1));
        let bytes = g.to_be_bytes();
        assert_eq!(Fe::from_be_bytes(&bytes), Some(g));
        assert!(Fe::from_be_bytes(&[0xff; 32]).is_none());
    }

    #[test]
    fn edge_scalars_give_the_sm2_crates_points() {
        let n_minus = |i: u64| -Scalar::from(i);
        let mut scalars = vec![
            Scalar::ONE,
            Scalar::from(2u64),
            Scalar::from(8u64),
            Scalar::from(9u64),
            n_minus(1),
            n_minus(2),
            n_minus(8),
        ];
        for hex in [
            "8888888888888888888888888888888888888888888888888888888888888888",
            "7777777777777777777777777777777777777777777777777777777777777777",
            "0000000000000000000000000000000000000000000000000000000000000010",
            "1000000000000000000000000000000000000000000000000000000000000000",
            "f000000000000000000000000000000000000000000000000000000000000000",
            "fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54122",
            "0808080808080808080808080808080808080808080808080808080808080808",
            "f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8",
        ] {
            scalars.push(scalar_from_hex(hex));
        }
        for shift in 0..64 {
            // 16^shift and 8·16^shift: digits at each window's extremes.
            let mut s = Scalar::ONE;
            for _ in 0..shift {
                s *= Scalar::from(16u64);
            }
            scalars.push(s);
            scalars.push(s * Scalar::from(8u64));
            scalars.push(-s);
        }
        for k in &scalars {
            let ours = generator_multiple_x(&k.to_repr().into()).expect("not the identity");
            assert_eq!(ours, x_by_the_sm2_crate(k), "k = {}", hex::encode(k.to_repr()));
        }
        assert_eq!(generator_multiple_x(&[0; 32]), None);
    }

    #[test]
    fn random_scalars_give_the_sm2_crates_points() {
        // A fixed-seed sequence of scalars (k ← k² + 3), so a failure is reproducible.
        let mut k = scalar_from_hex("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8");
        for _ in 0..300 {
            let ours = generator_multiple_x(&k.to_repr().into()).expect("not the identity");
            assert_eq!(ours, x_by_the_sm2_crate(&k), "k = {}", hex::encode(k.to_repr()));
            k = k.square() + Scalar::from(3u64);
        }
    }
}
