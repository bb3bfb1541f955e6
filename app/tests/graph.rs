//! The graph projection against a real FalkorDB server started by the test harness.

use ahlt::testing::falkordb_url;
use falkordb::{FalkorClientBuilder, FalkorValue};

#[tokio::test]
async fn falkordb_test_server_round_trips_a_query() {
    let url = falkordb_url().await;
    let client = FalkorClientBuilder::new_async()
        .with_connection_info(url.as_str().try_into().unwrap())
        .build()
        .await
        .unwrap();
    let mut graph = client.select_graph(ahlt::testing::unique_name("roundtrip"));
    let result = graph
        .query("CREATE (n:Thing {text: $text}) RETURN n.text")
        .with_param("text", "it's {`MATCH`} ü")
        .execute()
        .await
        .unwrap();
    let rows: Vec<_> = result.data.into_values_lossy().collect();
    assert_eq!(
        rows,
        vec![vec![FalkorValue::String("it's {`MATCH`} ü".into())]]
    );
    graph.delete().await.unwrap();
}
