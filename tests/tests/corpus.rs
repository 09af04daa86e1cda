//! Precision on real traffic: the scorecard over nDPI's corpus
//! (`../shared/corpus/ndpi-dev`, or `VPNFP_CORPUS`) holds its bounds.
//! Under CI the corpus must be there; elsewhere the test skips without it.

use vpnfp_tests::{corpus, vpnfp_bin};

#[test]
fn scorecard_on_the_ndpi_corpus() {
    let Some(dir) = corpus::for_test("scorecard_on_the_ndpi_corpus") else {
        return;
    };
    let card = corpus::score(&vpnfp_bin(), &dir).expect("scorecard");
    println!("{}", card.render());
    assert!(card.files >= 200, "only {} captures scored", card.files);
    assert!(card.errors.is_empty(), "replay errors: {:?}", card.errors);
    let false_vpn = card.false_vpn();
    assert!(
        false_vpn.is_empty(),
        "ordinary flows named a VPN: {false_vpn:?}"
    );
    let false_names = card.false_names();
    assert!(
        false_names.len() <= 3,
        "{} ordinary flows named a tunnel (at most 3): {false_names:?}",
        false_names.len()
    );
    let (found, tunnels) = card.recall();
    assert!(tunnels > 0, "no tunnel flows in the corpus");
    assert!(
        found * 10 >= tunnels * 9,
        "tunnel recall {found}/{tunnels} is under 90%"
    );
}
