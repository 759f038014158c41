//! A consumed record, detached from the consumer, and how a handler reads it.

use opentelemetry::propagation::Extractor;
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};

use super::handler::HandlerError;

/// A consumed record, detached from the consumer.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    /// Copies a message out of the consumer (whose borrowed messages cannot cross an await).
    pub fn from_message(m: &BorrowedMessage<'_>) -> Self {
        Record {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            headers: m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The value as a `T`, or poison: a record without a value (a tombstone where none is
    /// expected) or one that is not a `T` can never be handled, and goes to the DLQ naming why.
    pub fn decode<T: prost::Message + prost::Name + Default>(&self) -> Result<T, HandlerError> {
        let payload = self
            .payload
            .as_deref()
            .ok_or_else(|| HandlerError::poison("empty record (no value)"))?;
        T::decode(payload)
            .map_err(|e| HandlerError::poison(format!("not a {}: {e}", T::full_name())))
    }

    /// Like [`Record::decode`], but a tombstone is `None` (on compacted topics, where a
    /// tombstone means "deleted").
    pub fn decode_or_tombstone<T: prost::Message + prost::Name + Default>(
        &self,
    ) -> Result<Option<T>, HandlerError> {
        match self.payload {
            None => Ok(None),
            Some(_) => self.decode().map(Some),
        }
    }

    /// The key as UTF-8 (lossy), empty when absent.
    pub fn key_str(&self) -> String {
        self.key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }
}

impl Extractor for Record {
    fn get(&self, key: &str) -> Option<&str> {
        self.header(key).and_then(|v| std::str::from_utf8(v).ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.headers.iter().map(|(k, _)| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use newsroom_proto::v1::{Story, StoryEvent};
    use prost::Message as _;

    use super::*;

    fn record(payload: Option<Vec<u8>>) -> Record {
        Record {
            topic: "stories.raw".into(),
            partition: 0,
            offset: 7,
            key: Some(b"s1".to_vec()),
            payload,
            headers: Vec::new(),
        }
    }

    #[test]
    fn a_record_decodes_to_its_message_or_is_poison_naming_the_message() {
        let event = StoryEvent {
            story: Some(Story {
                id: "s1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let good = record(Some(event.encode_to_vec()));
        assert_eq!(good.decode::<StoryEvent>().unwrap(), event);

        let garbage = record(Some(vec![0xff, 0xff, 0xff]));
        let e = garbage.decode::<StoryEvent>().unwrap_err();
        assert!(e.is_poison());
        assert!(
            e.to_string().starts_with("not a newsroom.v1.StoryEvent"),
            "{e}"
        );

        let tombstone = record(None);
        assert!(tombstone.decode::<StoryEvent>().unwrap_err().is_poison());
        assert_eq!(tombstone.decode_or_tombstone::<StoryEvent>().unwrap(), None);
    }
}
