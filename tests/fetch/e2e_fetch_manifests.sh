#!/usr/bin/env bash
# e2e_fetch_manifests.sh: the command line (usage errors, unknown datasets, environment
# checks), the shipped manifests (--list, the real fashion_mnist manifest through --mirror),
# and Fashion-MNIST's four files (Debian's copies, served locally) under the real URLs'
# layout: download with a progress bar, throughput, and a second fetch that downloads nothing.
. "$MPSL_SOURCE/tests/fetch/lib.sh"
FM=/usr/share/datasets/fashion-mnist

# --- the command line
if "$MPSL" fetch >"$WORK/out" 2>"$WORK/err"; then fail "no arguments: exit 0"; else
  check "no arguments: usage, exit 2" test $? = 2; fi
if "$MPSL" fetch t --bogus >"$WORK/out" 2>"$WORK/err"; then fail "bogus option: exit 0"; else
  check "bogus option: exit 2" test $? = 2; fi
if "$MPSL" fetch --list t >"$WORK/out" 2>"$WORK/err"; then fail "--list NAME: exit 0"; else
  check "--list NAME: exit 2" test $? = 2; fi
expect_ok "help" "$MPSL" fetch --help
check "help mentions --mirror" grep -q -- "--mirror URL" "$WORK/out"
MPSL_FETCH_RETRIES=lots expect_refusal "bad environment value" "MPSL_FETCH_RETRIES" -- \
  "$MPSL" fetch fashion_mnist
MPSL_FETCH_PROGRESS=fancy expect_refusal "bad progress mode" "MPSL_FETCH_PROGRESS" -- \
  "$MPSL" fetch fashion_mnist
expect_refusal "unknown dataset" "no manifest for dataset 'nosuch'" "fashion_mnist" -- \
  "$MPSL" fetch nosuch
expect_refusal "did you mean" "did you mean 'fashion_mnist'?" -- "$MPSL" fetch fashion_mnst
expect_refusal "not a name" "is not a dataset name" -- "$MPSL" fetch 'a;b'
expect_refusal "--mirror must be http(s)" "only http:// and https:// mirrors" -- \
  "$MPSL" fetch fashion_mnist --mirror file:///tmp

# --- the shipped manifests
expect_ok "list the shipped manifests" "$MPSL" fetch --list
for d in b_t4sa coco_qa fashion_mnist flickr30k kinetics_sounds meld mscoco ucf101; do
  check "list: $d" grep -q "^$d " "$WORK/out"
done
check "list: fashion_mnist size" grep -Eq "^fashion_mnist +4 +30.9 MB +not fetched" "$WORK/out"
check "list: b_t4sa needs a login" grep -Eq "^b_t4sa .*\(login\)" "$WORK/out"
expect_refusal "b_t4sa: login" "must be downloaded by hand (login required)" -- \
  "$MPSL" fetch b_t4sa
check "b_t4sa: instructions" grep -q "http://www.t4sa.it/" "$WORK/out"
check "b_t4sa: where" grep -q "place it by hand at $MPSL_DATA_DIR/b_t4sa/b-t4sa_imgs.tar" "$WORK/out"

# What follows needs Debian's Fashion-MNIST: without it the checks above still count, and the
# test reports SKIP (77) for the rest rather than passing.
[ -f "$FM/train-images-idx3-ubyte.gz" ] || { echo "SKIP: dataset-fashion-mnist missing" >&2; finish || exit 1; exit 77; }
start_server

# The real manifest through --mirror: Debian's files are recompressed, so the sizes the
# manifest publishes refuse them before anything is kept.
expect_refusal "real manifest vs Debian's files" "the manifest says 26421880 bytes" -- \
  "$MPSL" fetch fashion_mnist --mirror "$BASE/fmnist"
no_final fashion_mnist train-images-idx3-ubyte.gz

# The same URLs with Debian's sizes and checksums.
{
  cat <<EOF
name: fmnist_debian
description: Fashion-MNIST as Debian packages it, under the upstream URLs
license: MIT
homepage: https://github.com/zalandoresearch/fashion-mnist
modalities: [image]
task: 10-class image classification
used_by: tests/fetch
files:
EOF
  for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz \
           t10k-labels-idx1-ubyte.gz; do
    cat <<EOF
  - name: $f
    urls:
      - https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/$f
      - http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/$f
    size: $(size_of "$FM/$f")
    sha256: $(sha_of "$FM/$f")
EOF
  done
} >"$WORK/datasets/fmnist_debian.yaml"
: >"$WORK/server.log"
MPSL_FETCH_PROGRESS=bar expect_ok "Fashion-MNIST through --mirror" \
  "$MPSL" fetch fmnist_debian --mirror "$BASE/fmnist/"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz \
         t10k-labels-idx1-ubyte.gz; do
  check "fmnist: $f intact" cmp -s "$FM/$f" "$MPSL_DATA_DIR/fmnist_debian/$f"
  check "fmnist: one request for $f (mirrors deduplicated)" test "$(requests "/fmnist/$f")" = 1
done
check "fmnist: progress bar reached 100%" grep -q "100% \[########################\]" "$WORK/err"
rate=$(grep -o "train-images-idx3-ubyte.gz: 26.4 MB in [0-9.]* s ([0-9.]* [kMG]B/s)" "$WORK/out")
check "fmnist: a rate for the 26 MB file" test -n "$rate"
echo "throughput on 127.0.0.1: $rate" >&2
n_before=$(wc -l <"$WORK/server.log")
expect_ok "Fashion-MNIST again" "$MPSL" fetch fmnist_debian --mirror "$BASE/fmnist"
check "fmnist again: nothing downloaded" grep -q "all 4 files present and verified; nothing downloaded" "$WORK/out"
check "fmnist again: no request" test "$(wc -l <"$WORK/server.log")" = "$n_before"
expect_ok "list after fetching" "$MPSL" fetch --list
check "list: fmnist_debian verified" grep -Eq "^fmnist_debian +4 +30.9 MB +verified" "$WORK/out"

stop_server
finish
