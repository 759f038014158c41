//! Writing replayed stories to the target: queued without waiting for each (a replay can be
//! millions of records), then settled, remembering where each landed for `--wait`.

use std::collections::BTreeMap;
use std::time::Duration;

use newsroom_platform::kafka::rdkafka::error::{KafkaError, RDKafkaErrorCode};
use newsroom_platform::kafka::rdkafka::message::OwnedHeaders;
use newsroom_platform::kafka::rdkafka::producer::future_producer::OwnedDeliveryResult;
use newsroom_platform::kafka::rdkafka::producer::{FutureProducer, FutureRecord};

type Delivery = newsroom_platform::kafka::rdkafka::producer::DeliveryFuture;

/// Queues one record, waiting while librdkafka's queue is full.
pub(super) fn send(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    payload: &[u8],
    headers: OwnedHeaders,
) -> Result<Delivery, KafkaError> {
    let mut record = FutureRecord::to(topic)
        .key(key)
        .payload(payload)
        .headers(headers);
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Waits for every queued write; remembers where each landed.
pub(super) fn settle(
    in_flight: &mut Vec<Delivery>,
    written: &mut BTreeMap<i32, Vec<i64>>,
) -> Result<(), KafkaError> {
    for delivery in in_flight.drain(..) {
        let result: OwnedDeliveryResult =
            futures::executor::block_on(delivery).map_err(|_| KafkaError::Canceled)?;
        match result {
            Ok(d) => written.entry(d.partition).or_default().push(d.offset),
            Err((e, _)) => return Err(e),
        }
    }
    Ok(())
}
