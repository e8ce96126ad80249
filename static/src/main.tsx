import { render } from "preact";
import { App } from "./App";
import { loadConfig } from "./config";
import { interceptLinks } from "./router";
import "./styles.css";

const root = document.getElementById("app")!;
interceptLinks(document.body);
loadConfig().then((config) => render(<App baseUrl={config.apiBaseUrl} />, root));
