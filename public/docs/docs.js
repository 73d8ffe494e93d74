// The API reference: Swagger UI (swagger-ui-dist, copied into vendor/ by
// scripts/build.sh) rendering /openapi.json. A file of its own, not an inline
// script, so the page keeps the strict Content-Security-Policy of public/_headers.
// "Try it out" calls this same origin (connect-src 'self').
/* global SwaggerUIBundle */
const main = document.getElementById('reference');
window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  domNode: main,
  deepLinking: true,
  docExpansion: 'list',
  defaultModelsExpandDepth: 0,
  displayOperationId: true,
  filter: true,
  showExtensions: true,
  // No call to swagger.io's online validator, and no ?url= or ?configUrl= taking over the page.
  validatorUrl: null,
  queryConfigEnabled: false,
  onComplete: () => main.removeAttribute('aria-busy'),
});
