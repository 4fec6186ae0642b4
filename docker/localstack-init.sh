#!/bin/sh
# Runs inside LocalStack once S3 is ready: the buckets the server and the e2e suite use.
awslocal s3 mb s3://advanced-notes-audio
awslocal s3 mb s3://advanced-notes-test
