#!/bin/sh
# SPDX-License-Identifier: MIT
# Run the whole suite on one engine: engine.sh ENGINE [FEATURES-TO-DISABLE]
ZMP_BACKEND=$1
ZMP_DISABLE=${2-}
export ZMP_BACKEND ZMP_DISABLE
echo "=== zmp test suite: engine $ZMP_BACKEND${ZMP_DISABLE:+ (without: $ZMP_DISABLE)} ==="
exec ./tests/zmp-test
