import requests
headers = {
"namespace": "$userid",
"Authorization": "bearer $token"
}

url = "https://demo.cdc.datenfab.com/mdc/api/v1/regions"

response = requests.get(url, headers=headers)
print(response.content.decode())
