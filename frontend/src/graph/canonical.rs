//! A canonical binary encoding of any `Serialize` value, for digests.
//!
//! Digests need an encoding where two different values never encode the
//! same. JSON gives that but spends its time escaping strings and formatting
//! numbers, and its size is hashed too. This encoding writes a tag byte
//! before every value and a length before every string, so it is unambiguous
//! without escaping. Struct fields are positional (their order is fixed by
//! the type); enum variants are named, so values of different variants never
//! collide:
//!
//! | value | bytes |
//! | --- | --- |
//! | bool | `b` 0/1 |
//! | integer | `i` + 8 bytes little-endian (`u` for unsigned) |
//! | float | `f` + 8 bytes of the IEEE bits |
//! | string, char | `s` + length (LEB128) + UTF-8 |
//! | bytes | `y` + length + bytes |
//! | none / some(x) | `n` / `S` x |
//! | unit | `0` |
//! | sequence, tuple | `[` items `]` |
//! | map | `{` key value ... `}` |
//! | struct | `(` fields in declaration order `)` |
//! | enum variant | `v` + variant name, then its content if any |
//!
//! Changing this encoding, or the order of fields in a hashed type, changes
//! every digest: treat it as a format.

use serde::ser::{self, Serialize};

/// Encoding failed (only through a `Serialize` impl that reports an error).
#[derive(Debug)]
pub struct EncodeError(String);

impl std::fmt::Display for EncodeError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

impl ser::Error for EncodeError {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        EncodeError(message.to_string())
    }
}

/// Append the canonical encoding of `value` to `out`.
pub fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    value.serialize(&mut Encoder { out })
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
}

impl Encoder<'_> {
    fn tag(&mut self, tag: u8) {
        self.out.push(tag);
    }

    /// LEB128: seven bits a byte, high bit set on all but the last.
    fn length(&mut self, length: usize) {
        let mut rest = length as u64;
        loop {
            let byte = (rest & 0x7f) as u8;
            rest >>= 7;
            if rest == 0 {
                self.out.push(byte);
                return;
            }
            self.out.push(byte | 0x80);
        }
    }

    fn string(&mut self, text: &str) {
        self.tag(b's');
        self.length(text.len());
        self.out.extend_from_slice(text.as_bytes());
    }

    fn variant(&mut self, name: &str) {
        self.tag(b'v');
        self.length(name.len());
        self.out.extend_from_slice(name.as_bytes());
    }
}

type Result<T = (), E = EncodeError> = std::result::Result<T, E>;

impl<'a, 'b> ser::Serializer for &'a mut Encoder<'b> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_bool(self, value: bool) -> Result {
        self.tag(b'b');
        self.out.push(u8::from(value));
        Ok(())
    }
    fn serialize_i8(self, value: i8) -> Result {
        self.serialize_i64(i64::from(value))
    }
    fn serialize_i16(self, value: i16) -> Result {
        self.serialize_i64(i64::from(value))
    }
    fn serialize_i32(self, value: i32) -> Result {
        self.serialize_i64(i64::from(value))
    }
    fn serialize_i64(self, value: i64) -> Result {
        self.tag(b'i');
        self.out.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }
    fn serialize_u8(self, value: u8) -> Result {
        self.serialize_u64(u64::from(value))
    }
    fn serialize_u16(self, value: u16) -> Result {
        self.serialize_u64(u64::from(value))
    }
    fn serialize_u32(self, value: u32) -> Result {
        self.serialize_u64(u64::from(value))
    }
    fn serialize_u64(self, value: u64) -> Result {
        self.tag(b'u');
        self.out.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }
    fn serialize_f32(self, value: f32) -> Result {
        self.serialize_f64(f64::from(value))
    }
    fn serialize_f64(self, value: f64) -> Result {
        self.tag(b'f');
        self.out.extend_from_slice(&value.to_bits().to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, value: char) -> Result {
        self.string(value.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, value: &str) -> Result {
        self.string(value);
        Ok(())
    }
    fn serialize_bytes(self, value: &[u8]) -> Result {
        self.tag(b'y');
        self.length(value.len());
        self.out.extend_from_slice(value);
        Ok(())
    }
    fn serialize_none(self) -> Result {
        self.tag(b'n');
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result {
        self.tag(b'S');
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result {
        self.tag(b'0');
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result {
        self.variant(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result {
        self.variant(variant);
        value.serialize(self)
    }
    fn serialize_seq(self, _length: Option<usize>) -> Result<Self> {
        self.tag(b'[');
        Ok(self)
    }
    fn serialize_tuple(self, _length: usize) -> Result<Self> {
        self.tag(b'[');
        Ok(self)
    }
    fn serialize_tuple_struct(self, _name: &'static str, _length: usize) -> Result<Self> {
        self.tag(b'[');
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _length: usize,
    ) -> Result<Self> {
        self.variant(variant);
        self.tag(b'[');
        Ok(self)
    }
    fn serialize_map(self, _length: Option<usize>) -> Result<Self> {
        self.tag(b'{');
        Ok(self)
    }
    fn serialize_struct(self, _name: &'static str, _length: usize) -> Result<Self> {
        self.tag(b'(');
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _length: usize,
    ) -> Result<Self> {
        self.variant(variant);
        self.tag(b'(');
        Ok(self)
    }
}

/// Sequences, tuples and tuple structs and variants: items, then `]`.
macro_rules! sequence {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for &mut Encoder<'_> {
            type Ok = ();
            type Error = EncodeError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result {
                self.tag(b']');
                Ok(())
            }
        }
    };
}

sequence!(SerializeSeq, serialize_element);
sequence!(SerializeTuple, serialize_element);
sequence!(SerializeTupleStruct, serialize_field);
sequence!(SerializeTupleVariant, serialize_field);

impl ser::SerializeMap for &mut Encoder<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result {
        key.serialize(&mut **self)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result {
        self.tag(b'}');
        Ok(())
    }
}

impl ser::SerializeStruct for &mut Encoder<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result {
        // Internally tagged enums (`#[serde(tag = "kind")]`) pass their tag
        // as a field: keep its value, it names the variant.
        let _ = key;
        value.serialize(&mut **self)
    }
    fn end(self) -> Result {
        self.tag(b')');
        Ok(())
    }
}

impl ser::SerializeStructVariant for &mut Encoder<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _key: &'static str, value: &T) -> Result {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result {
        self.tag(b')');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::encode;
    use serde::Serialize;

    fn bytes<T: Serialize>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        encode(value, &mut out).unwrap();
        out
    }

    #[test]
    fn strings_cannot_run_into_each_other() {
        assert_ne!(bytes(&("ab", "c")), bytes(&("a", "bc")));
        assert_ne!(bytes(&vec!["a,b"]), bytes(&vec!["a", "b"]));
        assert_ne!(bytes(&Some("")), bytes(&None::<&str>));
    }

    #[test]
    fn variants_are_named_and_fields_positional() {
        #[derive(Serialize)]
        struct A {
            x: u32,
            y: Option<u32>,
        }
        #[derive(Serialize)]
        #[serde(tag = "kind")]
        enum E {
            One { value: u32 },
            Two { value: u32 },
        }
        assert_ne!(bytes(&E::One { value: 1 }), bytes(&E::Two { value: 1 }));
        assert_ne!(bytes(&A { x: 1, y: None }), bytes(&A { x: 1, y: Some(1) }));
        assert_eq!(bytes(&1u8), bytes(&1u64));
        assert_eq!(bytes(&"x".repeat(300))[..3], [b's', 0xac, 0x02]);
    }
}
