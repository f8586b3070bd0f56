use super::*;
use std::time::{Duration, Instant};

fn init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("kafka_once=debug")
        .with_test_writer()
        .try_init();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn scratch_single() {
    init();
    let t = Instant::now();
    let k = LocalKafka::builder()
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("SINGLE start {:?}", t.elapsed());
    let t = Instant::now();
    k.stop().await.unwrap();
    eprintln!("SINGLE stop {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn scratch_three() {
    init();
    let t = Instant::now();
    let k = LocalKafka::builder()
        .brokers(3)
        .keep_data(true)
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("THREE start {:?} bootstrap {}", t.elapsed(), k.bootstrap());
    for n in k.nodes() {
        eprintln!("{n:?}");
    }
    let t = Instant::now();
    k.stop_node(2).await.unwrap();
    eprintln!("THREE stop_node(2) {:?}", t.elapsed());
    let t = Instant::now();
    k.start_node(2).await.unwrap_or_else(|e| panic!("{e}"));
    eprintln!("THREE start_node(2) {:?}", t.elapsed());
    let t = Instant::now();
    k.kill_node(3).await.unwrap();
    k.start_node(3).await.unwrap_or_else(|e| panic!("{e}"));
    eprintln!("THREE kill+start_node(3) {:?}", t.elapsed());
    for n in k.nodes() {
        assert_eq!(
            super::probe::metadata_broker_count(&n.address, Duration::from_secs(2)).await,
            Ok(3)
        );
    }
    let t = Instant::now();
    let root = k.root_dir().to_path_buf();
    drop(k);
    eprintln!("THREE drop {:?} root exists {}", t.elapsed(), root.exists());
}
