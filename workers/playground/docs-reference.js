// The API reference at /docs: Swagger UI over the Worker's own OpenAPI document.
window.SwaggerUIBundle({ url: "/openapi.json", dom_id: "#reference", deepLinking: true, tryItOutEnabled: true });
