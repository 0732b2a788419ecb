#!/bin/sh
# Hello: names the Knative revision that answered (K_REVISION is set by Knative).
printf 'Content-Type: text/plain\r\n\r\n'
echo "Hello from ${K_REVISION:-$(hostname)}"
