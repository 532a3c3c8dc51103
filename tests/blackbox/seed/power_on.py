import requests
headers = {
"namespace" :"$userid",
"Authorization": "bearer $token"
}

url = "https://demo.cdc.datenfab.com/mdc/api/v1/clusters/host-cluster/instances/instance-4ca9xxxx/power_on"

response = requests.post(url, headers=headers)
print(response.content.decode())
