//! Every diagnostic the derives emit has a compile-fail case in `ui/`, and
//! every shape that must compile has a case in `pass/`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/pass/*.rs");
    t.compile_fail("tests/ui/*.rs");
}
