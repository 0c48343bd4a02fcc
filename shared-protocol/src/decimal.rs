//! Decimal text to `f64`, with the result and the accepted syntax of `str::parse::<f64>`.
//!
//! The standard parser carries a 10 KB table of powers of five (for its fast
//! Eisel-Lemire path) that does not compress and was a thirtieth of the extension's
//! gzipped WASM, for the three or four numbers a command line holds (`--timeout 2.5`).
//! This one is slow and small: it guesses with a few float operations, then settles
//! the last bit by comparing the exact decimal value with the halfway points between
//! neighbouring floats, in integers. Same rounding (to nearest, ties to even), same
//! overflow to infinity and underflow to zero; tests compare it with the standard parser.
//!
//! It must stay a pure function of the text: no locale, no whitespace, no `_` separators.

use std::cmp::Ordering;

/// `text` as `str::parse::<f64>` reads it: `[+-]` then `inf`, `infinity` or `nan` in any
/// case, or digits with an optional `.` (at least one digit on either side) and an
/// optional exponent `e`/`E` `[+-]` digits. `None` where that parser fails.
pub fn parse_f64(text: &str) -> Option<f64> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = match unsigned.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            let (digits, exponent) = split_decimal(unsigned)?;
            nearest(&digits, exponent)
        }
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// The significant digits (no leading or trailing zeros, values 0–9) and the power of ten
/// they are multiplied by; `None` when `text` is not decimal syntax.
fn split_decimal(text: &str) -> Option<(Vec<u8>, i64)> {
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut digits = Vec::new();
    let mut exponent: i64 = 0;
    let mut seen_digit = false;
    while let Some(d) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
        seen_digit = true;
        if !digits.is_empty() || *d != b'0' {
            digits.push(d - b'0');
        }
        at += 1;
    }
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        while let Some(d) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
            seen_digit = true;
            if !digits.is_empty() || *d != b'0' {
                digits.push(d - b'0');
            }
            exponent -= 1;
            at += 1;
        }
    }
    if !seen_digit {
        return None;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        let negative = match bytes.get(at) {
            Some(b'-') => {
                at += 1;
                true
            }
            Some(b'+') => {
                at += 1;
                false
            }
            _ => false,
        };
        let start = at;
        let mut written: i64 = 0;
        while let Some(d) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
            // Far beyond any float's range; saturating keeps the sum below from overflowing.
            written = (written * 10 + i64::from(d - b'0')).min(1 << 40);
            at += 1;
        }
        if at == start {
            return None;
        }
        exponent += if negative { -written } else { written };
    }
    if at != bytes.len() {
        return None;
    }
    // Zeros before the point that were dropped as leading ones shift nothing; zeros after
    // the last nonzero digit only scale it.
    while digits.last() == Some(&0) {
        digits.pop();
        exponent += 1;
    }
    Some((digits, exponent))
}

/// The float nearest to `digits × 10^exponent` (ties to even), `digits` as [`split_decimal`]
/// returns them.
fn nearest(digits: &[u8], exponent: i64) -> f64 {
    if digits.is_empty() {
        return 0.0;
    }
    // 10^(len-1+exponent) ≤ value < 10^(len+exponent): beyond these bounds the value is
    // above f64::MAX plus half an ulp, or below half the smallest subnormal.
    let order = digits.len() as i64 + exponent;
    if order > 310 {
        return f64::INFINITY;
    }
    if order < -324 {
        return 0.0;
    }
    // A guess within a few ulps: the first 19 digits, scaled by exact powers of ten.
    let lead = digits.len().min(19);
    let mut guess = digits[..lead]
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(*d)) as f64;
    let mut scale = exponent + (digits.len() - lead) as i64;
    while scale != 0 {
        let step = scale.clamp(-22, 22);
        let power = 10f64.powi(step.abs() as i32);
        guess = if step > 0 {
            guess * power
        } else {
            guess / power
        };
        scale -= step;
    }
    let mut x = if guess.is_infinite() { f64::MAX } else { guess };
    // Step to the neighbour while the value lies beyond the halfway point towards it.
    loop {
        let (mantissa, power) = decompose(x);
        let odd = mantissa & 1 == 1;
        let above = compare(digits, exponent, 2 * mantissa + 1, power - 1);
        if above == Ordering::Greater || (above == Ordering::Equal && odd) {
            x = f64::from_bits(x.to_bits() + 1);
            if x.is_infinite() {
                return x;
            }
            continue;
        }
        if x > 0.0 {
            // Just above a power of two the float below is half as far away.
            let below = if mantissa == 1 << 52 && power > -1074 {
                compare(digits, exponent, 4 * mantissa - 1, power - 2)
            } else {
                compare(digits, exponent, 2 * mantissa - 1, power - 1)
            };
            if below == Ordering::Less || (below == Ordering::Equal && odd) {
                x = f64::from_bits(x.to_bits() - 1);
                continue;
            }
        }
        return x;
    }
}

/// A finite non-negative float as `mantissa × 2^power`, the mantissa with its implicit bit.
fn decompose(x: f64) -> (u64, i64) {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i64;
    let fraction = bits & ((1 << 52) - 1);
    if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    }
}

/// `digits × 10^exponent` against `mantissa × 2^power`, both made whole numbers first.
fn compare(digits: &[u8], exponent: i64, mantissa: u64, power: i64) -> Ordering {
    let mut left = Big::from(0);
    for d in digits {
        left.mul_add(10, u32::from(*d));
    }
    let mut right = Big::from(mantissa);
    let (ten_left, ten_right) = (exponent.max(0), (-exponent).max(0));
    let (two_left, two_right) = ((-power).max(0), power.max(0));
    for _ in 0..ten_left {
        left.mul_add(10, 0);
    }
    for _ in 0..ten_right {
        right.mul_add(10, 0);
    }
    for _ in 0..two_left {
        left.mul_add(2, 0);
    }
    for _ in 0..two_right {
        right.mul_add(2, 0);
    }
    left.cmp(&right)
}

/// An unsigned whole number in base 2^32 limbs, least significant first, no high zero limbs.
#[derive(PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from(n: u64) -> Big {
        let mut big = Big(vec![n as u32, (n >> 32) as u32]);
        big.trim();
        big
    }

    /// `self = self × factor + addend`.
    fn mul_add(&mut self, factor: u32, addend: u32) {
        let mut carry = u64::from(addend);
        for limb in &mut self.0 {
            let product = u64::from(*limb) * u64::from(factor) + carry;
            *limb = product as u32;
            carry = product >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }
}

impl PartialOrd for Big {
    fn partial_cmp(&self, other: &Big) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Big {
    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Ours and the standard parser agree, `NaN` included.
    fn agrees(text: &str) {
        let ours = parse_f64(text).map(f64::to_bits);
        let std = text.parse::<f64>().ok().map(f64::to_bits);
        assert_eq!(ours, std, "{text:?}");
    }

    #[test]
    fn the_syntax_is_the_standard_parsers() {
        for text in [
            "",
            "+",
            "-",
            ".",
            "e",
            "e5",
            "1e",
            "1e+",
            "1e-",
            ".e1",
            "1.e1",
            "1.",
            ".5",
            "+.5",
            "-0",
            "-0.0",
            "00012.50",
            "1_000",
            " 1",
            "1 ",
            "0x10",
            "1e5",
            "1E+05",
            "2.5e-3",
            "inf",
            "-Infinity",
            "INF",
            "nan",
            "NaN",
            "+nan",
            "infin",
            "1.2.3",
            "1e2e3",
            "--1",
            "1ee2",
            "٣",
        ] {
            agrees(text);
        }
    }

    #[test]
    fn edges_of_the_range_round_as_the_standard_parser_does() {
        for text in [
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "1.7976931348623159e308",
            "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792",
            "2.2250738585072011e-308",
            "2.2250738585072014e-308",
            "4.9406564584124654e-324",
            "2.4703282292062327e-324",
            "2.4703282292062328e-324",
            "1e-400",
            "1e400",
            "0e999999999999999999999",
            "9007199254740993",
            "9007199254740992.5",
            "0.1",
            "0.3",
            "123456789012345678901234567890",
            "1e23",
            "8.589973e9",
            "1.448997445238699",
        ] {
            agrees(text);
        }
    }

    proptest! {
        #[test]
        fn any_decimal_agrees(
            int in "[0-9]{0,25}", frac in "[0-9]{0,25}", point in any::<bool>(),
            exp in proptest::option::of(-340i32..340), sign in "[+-]?",
        ) {
            let mut text = format!("{sign}{int}");
            if point {
                text.push('.');
                text.push_str(&frac);
            }
            if let Some(e) = exp {
                text.push_str(&format!("e{e}"));
            }
            agrees(&text);
        }

        #[test]
        fn any_float_printed_reads_back(bits in any::<u64>()) {
            let x = f64::from_bits(bits);
            agrees(&format!("{x:e}"));
            agrees(&format!("{x}"));
        }

        #[test]
        fn any_text_agrees(text in "[-+0-9.eEinfatyINFATY_ ]{0,12}") {
            agrees(&text);
        }
    }
}
