#!/bin/bash
# regenerate verdicts.tsv: minilint (with known base-image env) + manual extra rows - manual drops
cd /work/corpus
{
for f in [0-9]*.Dockerfile; do
  python3 tools/minilint.py $f tools/baseenv.json | awk -v f=$f -F'\t' '{print f"\t"$1"\t"$2}'
done
cat tools/extra.tsv
} | grep -v -F -f <(cat tools/drop.tsv 2>/dev/null; echo '@@none@@') > /tmp/v.tsv
for f in [0-9]*.Dockerfile; do grep -q "^$f	" /tmp/v.tsv || echo -e "$f\tok\t0" >> /tmp/v.tsv; done
sort -t$'\t' -k1,1 -k3,3n -k2,2 /tmp/v.tsv > verdicts.tsv
# PATH-only variant: differences
for f in [0-9]*.Dockerfile; do
  diff <(python3 tools/minilint.py $f tools/baseenv.json | cut -f1,2) <(python3 tools/minilint.py $f | cut -f1,2) | grep '^[<>]' | sed "s/^/$f\t/"
done > tools/base-env-diff.txt
