#!/usr/bin/env bash
docker stop claradevday
