import { LabIcon } from '@jupyterlab/ui-components';

import infinstorSvg from '../style/icons/infinstor.svg';

/** The sidebar's icon: a bucket with a clock. */
export const infinstorIcon = new LabIcon({
  name: 'infinstor_jlab:infinstor',
  svgstr: infinstorSvg
});
