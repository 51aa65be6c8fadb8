import { render } from "preact";
import "./styles.css";

function App() {
  return <main>NoChat</main>;
}

render(<App />, document.getElementById("app")!);
