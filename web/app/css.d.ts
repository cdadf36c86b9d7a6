// Stylesheets imported by the app are bundled by esbuild into app.css.
declare module "*.css";
