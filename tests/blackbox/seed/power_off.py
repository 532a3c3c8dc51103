import requests
headers = {
"namespace" :"$userid",
"Authorization": "bearer $token"
}

url = "https://demo.cdc.datenfab.com/mdc/api/v1/clusters/host-cluster/instances/instance-3ba5xxxx/power_off"

body = {
"gracePeriodSeconds": 10,
"needSnapshot": True,
"imageName": "image1",
"tag": "v1.1.0"
}

response = requests.post(url,json=body,headers=headers)
print(response.content.decode())
