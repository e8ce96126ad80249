/// <reference types="vite/client" />
declare module "*.lp?raw" {
  const text: string;
  export default text;
}
