#!/bin/bash
# take.sh FILE owner/repo path [commit]   -> copies blob byte-for-byte, records source
set -e
f=$1; repo=$2; p=$3; c=${4:-}
g="git -C /work/.mirror/${repo/\//+}/repo"
[ -z "$c" ] && c=$($g rev-parse HEAD)
c=$($g rev-parse "$c")
$g show "$c:$p" > /work/corpus/$f
lic=$(cat /work/corpus/tools/lic/${repo/\//+} 2>/dev/null || echo '?')
echo -e "$f\t$repo\t$p\t$c\t$lic" >> /work/corpus/tools/sources.tsv
echo "$f <- $repo:$p@${c:0:12} ($(wc -l < /work/corpus/$f) lines)"
