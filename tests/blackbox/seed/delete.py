import requests
headers = {
"namespace" :"$userid",
"Authorization": "bearer $token"
}

url = "https://demo.cdc.datenfab.com/mdc/api/v1/clusters/host-cluster/instances?name=instance-ccffxxxx"

response = requests.delete(url, headers=headers)

print(response.content.decode())
