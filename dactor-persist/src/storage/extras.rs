//! The stored form of an event's tags, shared by the durable stores (and
//! covered by the event's checksum in that form).

use crate::PersistError;

/// The first byte of stored tags: their layout version.
const LAYOUT: u8 = 1;

/// The stored form of `tags`: `None` when there are none.
pub(crate) fn encode_tags(tags: &[String]) -> Option<Vec<u8>> {
    if tags.is_empty() {
        return None;
    }
    // A list of strings into a growable Vec cannot fail to encode.
    Some(postcard::to_extend(tags, vec![LAYOUT]).unwrap_or_else(|_| vec![LAYOUT]))
}

/// Tags back from their stored form.
pub(crate) fn decode_tags(bytes: &[u8]) -> Result<Vec<String>, PersistError> {
    let damaged =
        |why: String| PersistError::SerializationFailed(format!("stored event tags {why}"));
    match bytes.split_first() {
        Some((&LAYOUT, rest)) => {
            let (tags, left) = postcard::take_from_bytes::<Vec<String>>(rest)
                .map_err(|e| damaged(format!("do not decode: {e}")))?;
            if !left.is_empty() {
                return Err(damaged(format!("have {} bytes after them", left.len())));
            }
            Ok(tags)
        }
        Some((layout, _)) => Err(damaged(format!(
            "have layout {layout}, which this version does not know"
        ))),
        None => Err(damaged("are empty".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_none_stores_nothing() {
        assert_eq!(encode_tags(&[]), None);
        let tags = vec!["a".to_owned(), "ü b".to_owned()];
        assert_eq!(decode_tags(&encode_tags(&tags).unwrap()).unwrap(), tags);
        assert!(decode_tags(&[2, 0]).is_err());
        let mut long = encode_tags(&tags).unwrap();
        long.push(0);
        assert!(decode_tags(&long).is_err());
    }
}
