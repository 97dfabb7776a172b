"""Plain Python around the AWS Lambda MicroVMs (`lambda-microvms`) API: no Pulumi imports here."""
