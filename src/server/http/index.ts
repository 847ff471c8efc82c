/** The public face of the HTTP listener: the Fastify application and the routes it declares. */
export { buildHttpApp, routesOf, type DeclaredRoute, type HttpTls } from './app.js';
