#!/bin/sh
# A CPU-bound function: sums the numbers 1..n (n from the query string, default 100000).
n=$(echo "$QUERY_STRING" | sed -n 's/.*n=\([0-9]*\).*/\1/p')
printf 'Content-Type: text/plain\r\n\r\n'
awk -v n="${n:-100000}" 'BEGIN { s = 0; for (i = 1; i <= n; i++) s += i; printf "sum(1..%d) = %d\n", n, s }'
