export const dictionary = {
  "zywicki": "Z IH0 W IH1 K IY0",
  "zz(2)": "Z IY1 Z IY1",
  "zz": "Z Z",
  "\u00e9t\u00e9": "EY1 T EY1"
}
