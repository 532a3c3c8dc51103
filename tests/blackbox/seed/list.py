import requests
import json
headers = {
"namespace": "$userid",
"Authorization": "bearer $token"
}

url = "https://demo.cdc.datenfab.com/mdc/api/v1/clusters/host-cluster/instances"
response = requests.get(url, headers=headers)

data = response.json()

print(json.dumps(data, indent=4))
