import requests
import json
headers = {
"namespace": "$userid",
"Authorization": "bearer $token"
}

url = "https://demo.cdc.datenfab.com/mdc/api/v1/clusters/host-cluster/instances"

body={
"Cost": {
"CostType": "1",
"CouponID": "",
"DiskSKUID": "1",
"GPUSKUID": "66",
"CostTime": ""
},
"VolumeMount": [
{
"PathInContainer": "/root/data",
"Size": 50,
"Type": "shared-filesystem"
}
],
"namespace": "$userid",
"displayName": "test1",
"image": "images.neolink-ai.com/matrixdc/tensorflow:2.15.0-python3.10-cuda12.1.0-cudnn8-devel-ubuntu22.04",
"Region": ""
}
response = requests.post(url, json=body, headers=headers)

print(json.dumps(response.json(), indent=4))
