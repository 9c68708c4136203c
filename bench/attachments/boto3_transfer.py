#!/usr/bin/env python3
"""boto3's managed transfer, the baseline of bench/attachments:

    boto3_transfer.py upload|download ENDPOINT BUCKET KEY FILE

Credentials come from the environment (AWS_ACCESS_KEY_ID, ...), never argv.
Prints the seconds the transfer took (client made and connected first, so
Python's start-up is not counted), as one line.
"""
import sys
import time

import boto3
from boto3.s3.transfer import TransferConfig


def main():
    mode, endpoint, bucket, key, path = sys.argv[1:6]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.list_multipart_uploads(Bucket=bucket, MaxUploads=1)  # connect and sign once, untimed
    config = TransferConfig()  # boto3's defaults: 8 MB parts, 10 threads
    start = time.perf_counter()
    if mode == "upload":
        s3.upload_file(path, bucket, key, Config=config)
    else:
        s3.download_file(bucket, key, path, Config=config)
    print(f"{time.perf_counter() - start:.6f}")


if __name__ == "__main__":
    main()
